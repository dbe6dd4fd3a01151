/**
 * TLS (SPEC section 2): --tls-cert/--tls-key serve HTTPS and wss gossip;
 * --tls-ca makes peers' certificates chain to it, both the one a node dials
 * and the one dialing in. A throwaway CA and certificates are made with
 * openssl for the run; the nodes are real, on loopback.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { connect } from 'node:net';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCli } from '../../node/cli.ts';
import { startNode, type RunningNode, type StartOptions } from '../../node/start-node.ts';
import { makeCa, type CertFiles, type TestCa } from './tls-certs.ts';

const SECRET = 'tls-test-secret';
/** Long enough for a few sync rounds at 100 ms on 2 busy cores; a bound, not a speed claim. */
const SETTLE_MS = 15_000;

let dir: string;
let caA: TestCa;
let caB: TestCa;
const running: RunningNode[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hitmesh-tls-'));
  [caA, caB] = await Promise.all([makeCa(dir, 'ca-a'), makeCa(dir, 'ca-b')]);
});

afterAll(async () => {
  await Promise.all(running.map((n) => n.stop()));
  await rm(dir, { recursive: true, force: true });
});

interface NodeTls {
  readonly certs?: CertFiles;
  readonly ca?: TestCa;
}

async function start(id: string, tls: NodeTls, peers: readonly RunningNode[] = [], options: StartOptions = {}): Promise<RunningNode> {
  const args = ['--id', id, '--port', '0', '--data', join(dir, id), '--secret', SECRET, '--sync-interval', '100ms', '--log-level', 'silent'];
  if (tls.certs !== undefined) args.push('--tls-cert', tls.certs.cert, '--tls-key', tls.certs.key);
  if (tls.ca !== undefined) args.push('--tls-ca', tls.ca.cert);
  if (peers.length > 0) args.push('--peers', peers.map((p) => p.address).join(','));
  const cli = parseCli(args, {});
  if (cli.kind !== 'run') throw new Error('expected a run config');
  const node = await startNode(cli.config, { shutdownGraceMs: 1_000, ...options });
  running.push(node);
  return node;
}

/** An HTTPS request that trusts `ca` (and shows no client certificate, as curl or a browser would). */
function request(method: string, url: string, ca: TestCa): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, ca: readFileSync(ca.cert) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function json(method: string, url: string, ca: TestCa): Promise<unknown> {
  const { status, body } = await request(method, url, ca);
  if (status !== 200) throw new Error(`${method} ${url}: ${status} ${body}`);
  return JSON.parse(body) as unknown;
}

interface ClusterView {
  readonly peers: readonly { readonly id: string; readonly state: string }[];
}

const upPeers = async (node: RunningNode, ca: TestCa): Promise<string[]> =>
  ((await json('GET', `${node.url}/cluster`, ca)) as ClusterView).peers.filter((p) => p.state === 'up').map((p) => p.id).sort();

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + SETTLE_MS;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`not within ${SETTLE_MS} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const rejectedHandshakes = async (node: RunningNode, ca: TestCa): Promise<number> => {
  const { body } = await request('GET', `${node.url}/metrics`, ca);
  return Number(/hitmesh_gossip_rejected_total\{[^}]*kind="handshake"[^}]*\} (\d+)/.exec(body)?.[1] ?? 0);
};

describe('TLS', () => {
  let n1: RunningNode;
  let n2: RunningNode;
  let n3: RunningNode;

  it('a cluster runs over HTTPS and wss: it forms, and a hit on one node is counted on every node', async () => {
    n1 = await start('n1', { certs: await caA.issue('n1'), ca: caA });
    n2 = await start('n2', { certs: await caA.issue('n2'), ca: caA }, [n1]);
    n3 = await start('n3', { certs: await caA.issue('n3'), ca: caA }, [n1]);
    for (const node of [n1, n2, n3]) expect(node.url).toMatch(/^https:\/\//);
    await until('every node sees the other two up', async () => {
      const views = await Promise.all([n1, n2, n3].map((n) => upPeers(n, caA)));
      return views.every((v) => v.length === 2);
    });
    await json('POST', `${n3.url}/hit/over-tls?n=4`, caA);
    await until('n1 and n2 count the hit taken by n3', async () => {
      const counts = await Promise.all([n1, n2].map(async (n) => ((await json('GET', `${n.url}/count/over-tls?window=all`, caA)) as { count: number }).count));
      return counts.every((c) => c === 4);
    });
  });

  it('a peer dialing in with a certificate from another CA is refused on the upgrade, though it trusts ours', async () => {
    const before = await rejectedHandshakes(n1, caA);
    // Trusts CA A, so it accepts n1's certificate; its own comes from CA B.
    const rogue = await start('rogue-in', { certs: await caB.issue('rogue-in'), ca: caA }, [n1]);
    await until('n1 refuses its handshake', async () => (await rejectedHandshakes(n1, caA)) > before);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await upPeers(n1, caA)).toEqual(['n2', 'n3']);
    // Its answers are under CA B: read them trusting B.
    expect(await upPeers(rogue, caB)).toEqual([]);
  });

  it('a node does not join a peer whose certificate is from another CA (the dialer checks it)', async () => {
    // Serves TLS under CA B and asks nobody for a certificate (no --tls-ca): only the dialer's check stands in the way.
    const stranger = await start('stranger', { certs: await caB.issue('stranger') });
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
    const dialer = await start('dialer', { certs: await caA.issue('dialer'), ca: caA }, [stranger], { logger });
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await upPeers(dialer, caA)).toEqual([]);
    expect(await upPeers(stranger, caB)).toEqual([]);
    // Said once, with the reason, though the dial is retried all along: a certificate problem is not silent.
    const said = lines.map((l) => JSON.parse(l) as { msg: string; reason?: string }).filter((l) => l.msg.startsWith(`cannot dial ${stranger.address}`));
    expect(said).toHaveLength(1);
    expect(said[0]?.reason).toMatch(/CERT|SIGNATURE|ISSUER|SELF_SIGNED/);
  });

  it('plain HTTP to a TLS node fails at once, the node goes on, and a plain node cannot join', async () => {
    const plain = await new Promise<string>((resolve) => {
      const req = http.get(`${n1.url.replace('https:', 'http:')}/healthz`, (res) => resolve(`answered ${res.statusCode}`));
      req.setTimeout(5_000, () => req.destroy(new Error('timed out')));
      req.on('error', (error: Error & { code?: string }) => resolve(error.code ?? error.message));
    });
    expect(plain).toMatch(/ECONNRESET|socket hang up|EPIPE/);
    const outsider = await start('outsider', {}, [n1]);
    await new Promise((r) => setTimeout(r, 1_500));
    const view = (await (await fetch(`${outsider.url}/cluster`)).json()) as ClusterView;
    expect(view.peers.filter((p) => p.state === 'up')).toEqual([]);
    expect(await upPeers(n1, caA)).toEqual(['n2', 'n3']);
    expect((await request('GET', `${n1.url}/healthz`, caA)).status).toBe(200);
  });

  it('a connection that never starts its TLS handshake is closed after the header timeout, not the 120 s of tls', async () => {
    const node = await start('silent-client', { certs: await caA.issue('silent-client') }, [], { httpTimeouts: { headersMs: 400 } });
    const [host, port] = node.address.split(':');
    const started = Date.now();
    const closedAfter = await new Promise<number>((resolve) => {
      const socket = connect(Number(port), host);
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(Date.now() - started));
      setTimeout(() => socket.destroy(), 10_000).unref();
    });
    // Closed by the node (well before the test's own 10 s), and not at once: it did wait for a hello.
    expect(closedAfter).toBeLessThan(5_000);
    expect(closedAfter).toBeGreaterThanOrEqual(300);
  });

  it('a start with a key of another certificate, a missing file, or a CA that is not PEM stops with the flag named', async () => {
    const a = await caA.issue('mismatch-a');
    const b = await caA.issue('mismatch-b');
    const attempt = (extra: string[]): Promise<unknown> => {
      const cli = parseCli(['--id', 'bad', '--port', '0', '--data', join(dir, 'bad'), '--log-level', 'silent', ...extra], {});
      if (cli.kind !== 'run') throw new Error('expected a run config');
      return startNode(cli.config).then(
        async (node) => {
          await node.stop();
          return 'started';
        },
        (error: unknown) => (error instanceof Error ? error.message : String(error)),
      );
    };
    expect(await attempt(['--tls-cert', a.cert, '--tls-key', b.key])).toMatch(/--tls-cert .* and --tls-key .* do not make a TLS identity/);
    expect(await attempt(['--tls-cert', join(dir, 'nope.pem'), '--tls-key', a.key])).toMatch(/cannot read --tls-cert/);
    expect(await attempt(['--tls-cert', a.cert, '--tls-key', a.key, '--tls-ca', a.key])).toMatch(/--tls-ca .* is not a PEM certificate/);
    expect(() => parseCli(['--tls-cert', a.cert], {})).toThrow(/--tls-cert and --tls-key go together/);
    expect(() => parseCli(['--tls-ca', caA.cert], {})).toThrow(/--tls-ca needs --tls-cert and --tls-key/);
  });
});
