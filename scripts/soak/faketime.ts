/**
 * Whether libfaketime can skew a node's clock here. It is probed, not just
 * looked for: a library that is there but does not move Node's clock (wrong
 * architecture, a broken build) would make the skew fault a silent no-op.
 */
import { execFile } from 'node:child_process';
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where Debian's `faketime` package puts it. */
export const DEFAULT_FAKETIME_LIBRARY = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';

export type FaketimeCheck = { readonly ok: true; readonly library: string } | { readonly ok: false; readonly reason: string };

/** The probe sets this offset and expects Node's Date.now() to be at least this much ahead. */
const PROBE_OFFSET_S = 100;

export async function checkFaketime(library: string): Promise<FaketimeCheck> {
  if (library === 'none') return { ok: false, reason: 'turned off with --faketime none' };
  try {
    await access(library);
  } catch {
    return { ok: false, reason: `libfaketime is not installed (no ${library}; Debian: apt-get install faketime)` };
  }
  const dir = await mkdtemp(join(tmpdir(), 'hitmesh-faketime-'));
  try {
    const file = join(dir, 'offset');
    await writeFile(file, `+${PROBE_OFFSET_S}s\n`);
    const before = Date.now();
    const env = { ...process.env, LD_PRELOAD: library, FAKETIME_TIMESTAMP_FILE: file, FAKETIME_NO_CACHE: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1', LC_NUMERIC: 'C' };
    const seen = await new Promise<number>((resolve) => {
      execFile(process.execPath, ['-e', 'process.stdout.write(String(Date.now()))'], { env, timeout: 10_000 }, (error, stdout) => resolve(error === null ? Number(stdout) : NaN));
    });
    if (Number.isFinite(seen) && seen - before >= (PROBE_OFFSET_S - 10) * 1000) return { ok: true, library };
    return { ok: false, reason: `${library} did not move Node's clock (probe read ${Number.isFinite(seen) ? `${seen - before} ms` : 'nothing'} instead of +${PROBE_OFFSET_S} s)` };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
