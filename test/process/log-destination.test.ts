/**
 * A failing log destination must not stop a node (issue 9): a real node
 * process whose stdout is a file that can no longer grow. The file is made
 * exactly as big as the process's file-size limit (prlimit --fsize), so every
 * log write fails with EFBIG (Node ignores SIGXFSZ, so the write fails rather
 * than killing the process), while LevelDB's files, far below the limit, are
 * written as usual. The node must take and count hits, say in /metrics how
 * many lines it dropped, and stop cleanly on SIGTERM.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, makeTempDir, removeTempDirs, REPO_ROOT, sleep } from './node-process.ts';

/** Far above what LevelDB writes in this test, so only the log file is at its limit. */
const FILE_SIZE_LIMIT = 64 * 1024 * 1024;

const children: ChildProcess[] = [];

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await removeTempDirs();
});

function sample(metrics: string, name: string): number | undefined {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('a node whose stdout cannot grow', () => {
  it('keeps taking hits, counts the log lines it drops, and stops cleanly', async () => {
    const dir = await makeTempDir('hitmesh-log-');
    const logFile = join(dir, 'stdout.log');
    truncateSync(openAndClose(logFile), FILE_SIZE_LIMIT); // sparse: no disk is used
    const stdout = openSync(logFile, 'a');
    const port = await freePort();
    const args = [`--fsize=${FILE_SIZE_LIMIT}`, process.execPath, '--import', 'tsx', 'node/main.ts', '--id', 'lg', '--port', String(port), '--data', join(dir, 'data'), '--log-level', 'debug'];
    const child = spawn('prlimit', args, { cwd: REPO_ROOT, stdio: ['ignore', stdout, 'pipe'] });
    children.push(child);
    closeSync(stdout);
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    let status: { code: number | null; signal: string | null } | undefined;
    void exited.then((s) => (status = s));
    const base = `http://127.0.0.1:${port}`;

    // Ready: it got past "node listening", the first line it logs after binding.
    for (let until = Date.now() + 30_000; ; await sleep(100)) {
      if (status !== undefined) throw new Error(`the node exited (${JSON.stringify(status)}) before it was ready:\n${stderr}`);
      if (Date.now() > until) throw new Error(`the node was not ready within 30 s:\n${stderr}`);
      const ready = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(2_000) }).then((res) => res.ok, () => false);
      if (ready) break;
    }

    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${base}/hit/k`, { method: 'POST' });
      expect(res.status, await res.text()).toBe(200);
    }
    const bad = await fetch(`${base}/hit/k?n=0`, { method: 'POST' });
    expect(bad.status).toBe(400);
    const count = (await (await fetch(`${base}/count/k?window=all`)).json()) as { count: number };
    expect(count.count).toBe(5);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(sample(metrics, 'hitmesh_log_lines_dropped_total'), metrics).toBeGreaterThan(0);
    expect(status, stderr).toBeUndefined();

    child.kill('SIGTERM');
    expect(await exited, stderr).toEqual({ code: 0, signal: null });
    expect(stderr).not.toMatch(/EFBIG|Unhandled|uncaught/i);
    expect(statSync(logFile).size).toBe(FILE_SIZE_LIMIT);
  });
});

function openAndClose(path: string): string {
  closeSync(openSync(path, 'w'));
  return path;
}
