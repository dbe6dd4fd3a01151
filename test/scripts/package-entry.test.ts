// The package's entries run without tsx: `hitmesh/client` (exports) and the
// `hitmesh` command (bin) point at what `npm run build` (tsc -p
// tsconfig.build.json, run by `prepare` on npm ci) compiles, and the
// compiled files load in plain Node. Built into a temp dir inside the
// project (so node_modules resolves), not into dist/.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');

interface PackageJson {
  readonly version: string;
  readonly exports: Record<string, { types: string; default: string } | string>;
  readonly bin: Record<string, string>;
}

let out: string;
let pkg: PackageJson;

beforeAll(async () => {
  out = await mkdtemp(join(ROOT, '.build-test-'));
  pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as PackageJson;
  await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', out], { cwd: ROOT });
}, 120_000);

afterAll(async () => {
  await rm(out, { recursive: true, force: true });
});

/** Where a path under dist/ (as package.json names it) lands in the temp build. */
const built = (distPath: string): string => {
  expect(distPath.startsWith('./dist/')).toBe(true);
  return join(out, distPath.slice('./dist/'.length));
};

describe('the package entries', () => {
  it('hitmesh/client loads in plain Node and exports the client, with its types beside it', async () => {
    const entry = pkg.exports['./client'];
    if (entry === undefined || typeof entry === 'string') throw new Error('no ./client entry with types');
    const client = (await import(pathToFileURL(built(entry.default)).href)) as Record<string, unknown>;
    expect(typeof client.HitmeshClient).toBe('function');
    await expect(readFile(built(entry.types), 'utf8')).resolves.toMatch(/HitmeshClient/);
  });

  it('the hitmesh command runs in plain Node and says its version', async () => {
    const bin = pkg.bin.hitmesh;
    if (bin === undefined) throw new Error('no hitmesh bin');
    const { stdout } = await run(process.execPath, [built(bin), '--version']);
    expect(stdout.trim()).toContain(pkg.version);
    const first = (await readFile(built(bin), 'utf8')).split('\n')[0];
    expect(first).toBe('#!/usr/bin/env node');
  });
});
