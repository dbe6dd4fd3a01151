/**
 * --peers-dns (SPEC section 2): a node dials the A/AAAA records of a name and
 * re-resolves it, as a StatefulSet behind a headless Service needs. A real DNS
 * server (dns2, UDP on loopback) answers from records the test changes while
 * the cluster runs; the nodes are real, on 127.0.0.1/.2/.3 with one port, as
 * pods share a port on their own IPs.
 */
import { createServer as createTcpServer } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dns2, { type Packet as DnsPacket, type Resource as DnsResource } from 'dns2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCli } from '../../node/cli.ts';
import { DnsSeeds, seedAddress, type DnsResult } from '../../node/dns-seeds.ts';
import { startNode, type RunningNode } from '../../node/start-node.ts';

const NAME = 'hitmesh-peers.hitmesh.test';
/** RFC 1035 response codes (dns2 has them at run time, not in its types). */
const RCODE = { SERVFAIL: 2, NXDOMAIN: 3 } as const;
/** A bound for a few 200 ms resolutions and 100 ms sync rounds on 2 busy cores; not a speed claim. */
const SETTLE_MS = 15_000;

/** The zone the server answers from: change it and the next query sees it. */
const zone = { a: [] as string[], aaaa: [] as string[], servfail: false, servfailAaaa: false };
let dnsPort = 0;
let dnsServer: ReturnType<typeof dns2.createServer>;
let dir: string;
let port = 0;
const running: RunningNode[] = [];

function answer(request: DnsPacket, send: (response: DnsPacket) => void): void {
  const response = dns2.Packet.createResponseFromRequest(request);
  const [question] = request.questions;
  if (question === undefined) return send(response);
  if (zone.servfail || (zone.servfailAaaa && question.type === dns2.Packet.TYPE.AAAA)) {
    response.header.rcode = RCODE.SERVFAIL;
    return send(response);
  }
  if (question.name.toLowerCase() !== NAME) {
    response.header.rcode = RCODE.NXDOMAIN;
    return send(response);
  }
  const ipv6 = question.type === dns2.Packet.TYPE.AAAA;
  for (const address of ipv6 ? zone.aaaa : question.type === dns2.Packet.TYPE.A ? zone.a : []) {
    // dns2's types want a Resource instance; its encoder takes plain records, as its README shows.
    response.answers.push({ name: question.name, type: question.type, class: dns2.Packet.CLASS.IN, ttl: 1, address } as DnsResource);
  }
  send(response);
}

async function freePort(): Promise<number> {
  const server = createTcpServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hitmesh-dns-'));
  dnsServer = dns2.createServer({ udp: true, handle: (request, send) => answer(request, (response) => void send(response)) });
  const bound = await dnsServer.listen({ udp: { port: 0, address: '127.0.0.1' } });
  if (bound.udp === undefined) throw new Error('the DNS server did not bind UDP');
  dnsPort = bound.udp.port;
  port = await freePort();
});

afterAll(async () => {
  await Promise.all(running.map((n) => n.stop()));
  await dnsServer.close();
  await rm(dir, { recursive: true, force: true });
});

async function start(id: string, host: string, dns: boolean): Promise<RunningNode> {
  const args = ['--id', id, '--host', host, '--port', String(port), '--data', join(dir, id), '--secret', 'dns-test-secret', '--sync-interval', '100ms', '--log-level', 'silent'];
  if (dns) args.push('--peers-dns', `${NAME}:${port}`, '--dns-server', `127.0.0.1:${dnsPort}`, '--peers-dns-interval', '200ms');
  const cli = parseCli(args, {});
  if (cli.kind !== 'run') throw new Error('expected a run config');
  const node = await startNode(cli.config, { shutdownGraceMs: 1_000 });
  running.push(node);
  return node;
}

async function get<T>(url: string): Promise<T> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url}: ${res.status}`);
  return (await res.json()) as T;
}

const upPeers = async (node: RunningNode): Promise<string[]> =>
  (await get<{ peers: { id: string; state: string }[] }>(`${node.url}/cluster`)).peers.filter((p) => p.state === 'up').map((p) => p.id).sort();

async function metric(node: RunningNode, pattern: RegExp): Promise<number> {
  const page = await (await fetch(`${node.url}/metrics`)).text();
  return Number(pattern.exec(page)?.[1] ?? Number.NaN);
}
const seedsGauge = (node: RunningNode): Promise<number> => metric(node, /^hitmesh_dns_seeds\{[^}]*\} (\S+)$/m);
const resolutions = (node: RunningNode, result: DnsResult): Promise<number> =>
  metric(node, new RegExp(`^hitmesh_dns_seed_resolutions_total\\{[^}]*result="${result}"[^}]*\\} (\\S+)$`, 'm')).then((n) => (Number.isNaN(n) ? 0 : n));

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + SETTLE_MS;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`not within ${SETTLE_MS} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('--peers-dns against a live DNS server', () => {
  let n1: RunningNode;
  let n2: RunningNode;
  let n3: RunningNode;

  it('nodes named by the records find each other, the own address among them', async () => {
    zone.a = ['127.0.0.1', '127.0.0.2'];
    n1 = await start('n1', '127.0.0.1', true);
    n2 = await start('n2', '127.0.0.2', true);
    await until('n1 and n2 see each other up', async () => (await upPeers(n1)).join() === 'n2' && (await upPeers(n2)).join() === 'n1');
    expect(await seedsGauge(n1)).toBe(2);
    expect(await resolutions(n1, 'ok')).toBeGreaterThan(0);
  });

  it('a record added while the cluster runs is dialed: a node that knows no one is found', async () => {
    n3 = await start('n3', '127.0.0.3', false);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await upPeers(n3)).toEqual([]);
    zone.a = ['127.0.0.1', '127.0.0.2', '127.0.0.3'];
    // n3 can also be reached through membership (n2 dials it, n3 then hears of n1): wait for n1's own answer too.
    await until('n1 holds the new record', async () => (await seedsGauge(n1)) === 3);
    await until('n3 is dialed by both', async () => (await upPeers(n3)).join() === 'n1,n2');
    const hit = await fetch(`${n3.url}/hit/found-by-dns?n=3`, { method: 'POST' });
    expect(hit.status).toBe(200);
    await until('n1 counts the hit n3 took', async () => (await get<{ count: number }>(`${n1.url}/count/found-by-dns?window=all`)).count === 3);
  });

  it('a DNS failure keeps the last addresses; a removed record drops out of the set', async () => {
    zone.servfail = true;
    const errorsBefore = await resolutions(n1, 'error');
    await until('n1 counts failed resolutions', async () => (await resolutions(n1, 'error')) >= errorsBefore + 2);
    expect(await seedsGauge(n1)).toBe(3);
    expect((await upPeers(n1)).join()).toBe('n2,n3');
    zone.servfail = false;
    zone.a = ['127.0.0.1', '127.0.0.2'];
    await until('n1 holds the two named addresses', async () => (await seedsGauge(n1)) === 2);
    // The record says where to look, not who is a member: n3 stays a peer.
    expect((await upPeers(n1)).join()).toBe('n2,n3');
  });
});

describe('DnsSeeds', () => {
  it('takes A and AAAA records on the port, sorted, IPv6 in brackets, cut at the limit', async () => {
    zone.servfail = false;
    zone.a = ['10.0.0.2', '10.0.0.1', '10.0.0.3'];
    zone.aaaa = ['fd00::1'];
    const applied: (readonly string[])[] = [];
    const seen: DnsResult[] = [];
    const seeds = new DnsSeeds({ host: NAME, port: 7001, intervalMs: 60_000, server: `127.0.0.1:${dnsPort}`, maxAddresses: 3 }, (a) => applied.push(a), {
      resolved: (result) => seen.push(result),
    });
    seeds.start();
    await until('one resolution', () => Promise.resolve(seeds.settled));
    seeds.stop();
    zone.aaaa = [];
    expect(seen).toEqual(['ok']);
    expect(applied).toEqual([['10.0.0.1:7001', '10.0.0.2:7001', '10.0.0.3:7001']]);
    expect(seedAddress('fd00::1', 7001)).toBe('[fd00::1]:7001');
  });

  it('a family whose query fails keeps its last addresses while the other changes', async () => {
    zone.servfail = false;
    zone.a = ['10.0.0.1'];
    zone.aaaa = ['fd00::1'];
    const applied: (readonly string[])[] = [];
    const seeds = new DnsSeeds({ host: NAME, port: 7001, intervalMs: 100, server: `127.0.0.1:${dnsPort}`, maxAddresses: 10 }, (a) => applied.push(a), {
      resolved: () => undefined,
    });
    seeds.start();
    await until('the first answer', () => Promise.resolve(applied.length === 1));
    zone.servfailAaaa = true;
    zone.a = ['10.0.0.2'];
    await until('the second answer', () => Promise.resolve(applied.length === 2));
    seeds.stop();
    zone.servfailAaaa = false;
    zone.aaaa = [];
    expect(applied).toEqual([
      ['10.0.0.1:7001', '[fd00::1]:7001'],
      ['10.0.0.2:7001', '[fd00::1]:7001'],
    ]);
  });

  it('an IPv6-only name (written absolute, with its trailing dot) gives bracketed addresses; an unknown name is empty, not an error', async () => {
    zone.a = [];
    zone.aaaa = ['fd00::7'];
    const results: { result: DnsResult; addresses: readonly string[] }[] = [];
    const make = (host: string): DnsSeeds =>
      new DnsSeeds({ host, port: 7001, intervalMs: 60_000, server: `127.0.0.1:${dnsPort}`, maxAddresses: 10 }, () => undefined, {
        resolved: (result, addresses) => results.push({ result, addresses }),
      });
    for (const host of [`${NAME}.`, 'nobody.hitmesh.test']) {
      const seeds = make(host);
      seeds.start();
      await until(`${host} resolved`, () => Promise.resolve(seeds.settled));
      seeds.stop();
    }
    zone.aaaa = [];
    expect(results).toEqual([
      { result: 'ok', addresses: ['[fd00::7]:7001'] },
      { result: 'empty', addresses: [] },
    ]);
  });
});
