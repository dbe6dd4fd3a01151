/**
 * Losing log lines never stops a node (issue 9): a destination whose writes
 * fail drops the lines and counts them, and takes them again once it can.
 * The same with a real node process whose stdout cannot grow is in
 * test/process/log-destination.test.ts.
 */
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, LogDestination } from '../../node/logger.ts';

const opened: number[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const fd of opened.splice(0)) closeSync(fd);
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

const open = (path: string, flags: string): number => {
  const fd = openSync(path, flags);
  opened.push(fd);
  return fd;
};

describe('the log destination', () => {
  it('drops and counts lines it cannot write (/dev/full: every write fails with ENOSPC), and nothing is thrown', async () => {
    const destination = new LogDestination(open('/dev/full', 'w'));
    const logger = createLogger('n1', 'info', destination);
    for (let i = 0; i < 100; i++) logger.info({ i }, 'a line that cannot be written');
    await destination.flushed();
    expect(destination.dropped).toBe(100);
    expect(destination.lastError).toMatch(/ENOSPC/);
  });

  it('writes every line, in order, to a destination that works', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hitmesh-log-'));
    dirs.push(dir);
    const destination = new LogDestination(open(join(dir, 'out.log'), 'a'));
    const logger = createLogger('n1', 'info', destination);
    for (let i = 0; i < 2_000; i++) logger.info({ i }, 'line');
    await destination.flushed();
    const lines = readFileSync(join(dir, 'out.log'), 'utf8').trimEnd().split('\n').map((line) => JSON.parse(line) as { i: number; node: string });
    expect(lines.map((line) => line.i)).toEqual(Array.from({ length: 2_000 }, (_, i) => i));
    expect(lines[0]?.node).toBe('n1');
    expect(destination.dropped).toBe(0);
  });

  it('holds at most its limit while the destination is slow, drops the rest, and goes on', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hitmesh-log-'));
    dirs.push(dir);
    const destination = new LogDestination(open(join(dir, 'out.log'), 'a'), { maxPendingBytes: 4_096 });
    const logger = createLogger('n1', 'info', destination);
    // All in one turn: nothing can be written before the loop ends, so most lines find the buffer full.
    for (let i = 0; i < 1_000; i++) logger.info({ i }, 'burst');
    expect(destination.dropped).toBeGreaterThan(0);
    await destination.flushed();
    const written = readFileSync(join(dir, 'out.log'), 'utf8').trimEnd().split('\n').length;
    expect(written + destination.dropped).toBe(1_000);
    logger.info('after the burst');
    await destination.flushed();
    expect(readFileSync(join(dir, 'out.log'), 'utf8')).toMatch(/after the burst\S*\n$/);
  });
});
