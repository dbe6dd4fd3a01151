/**
 * libfaketime for the clock-skew process test. It is required, not optional:
 * a missing library must fail the test with what to install, never skip it
 * (a skipped clock test reads as a passed one). It is probed too: a library
 * that is there but does not move Node's clock would make every skew a no-op.
 */
import { execFile } from 'node:child_process';
import { access, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FakeClock } from '../../scripts/lib/local-node.ts';

/** Where Debian's `faketime` package puts it; HITMESH_TEST_FAKETIME overrides (another distribution's path). */
export const FAKETIME_LIBRARY = process.env.HITMESH_TEST_FAKETIME ?? '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';

const INSTALL = 'install the Debian package `faketime` (apt-get install faketime; CI installs it)';
const PROBE_OFFSET_S = 3_600;

/** Throws, saying what to install, unless libfaketime moves a Node process's wall clock here. */
export async function requireFaketime(dir: string): Promise<void> {
  try {
    await access(FAKETIME_LIBRARY);
  } catch {
    throw new Error(`libfaketime is missing (no ${FAKETIME_LIBRARY}): the clock-skew test needs it to move a node's clock; ${INSTALL}`);
  }
  const clock = fakeClockIn(dir, 'probe');
  await writeFile(clock.file, `+${PROBE_OFFSET_S}.000s\n`);
  const env = { ...process.env, ...faketimeEnv(clock) };
  const seen = await new Promise<number>((resolve) => {
    execFile(process.execPath, ['-e', 'process.stdout.write(String(Date.now()))'], { env, timeout: 10_000 }, (error, stdout) => resolve(error === null ? Number(stdout) : NaN));
  });
  const ahead = seen - Date.now();
  if (!(Math.abs(ahead - PROBE_OFFSET_S * 1000) < 60_000)) {
    throw new Error(`${FAKETIME_LIBRARY} did not move Node's clock (a probe under it was ${Number.isFinite(ahead) ? `${ahead} ms` : 'not'} ahead, not ${PROBE_OFFSET_S} s); ${INSTALL}`);
  }
}

/** A fake clock whose offset lives in `<dir>/<name>.faketime` (LocalNode writes it). */
export function fakeClockIn(dir: string, name: string): FakeClock {
  return { library: FAKETIME_LIBRARY, file: join(dir, `${name}.faketime`) };
}

/** The environment LocalNode gives a node with a fake clock (the probe uses the same). */
function faketimeEnv(clock: FakeClock): Record<string, string> {
  return { LD_PRELOAD: clock.library, FAKETIME_TIMESTAMP_FILE: clock.file, FAKETIME_NO_CACHE: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1', LC_NUMERIC: 'C' };
}
