import { describe, expect, it } from 'vitest';
import { Tier } from '../../crdt/tiers.ts';
import { CliError, helpText, parseCli, type CliResult } from '../../node/cli.ts';

function config(result: CliResult) {
  if (result.kind !== 'run') throw new Error('expected a config');
  return result.config;
}

describe('cli', () => {
  it('takes every SPEC flag, with the documented defaults', () => {
    const c = config(parseCli(['--id', 'n1'], {}));
    expect(c).toMatchObject({ id: 'n1', host: '127.0.0.1', port: 7001, peers: [], dataDir: './data/n1', advertise: '127.0.0.1:7001', static: false, maxClockSkewMs: 500, secret: undefined, forgetAfterMs: 86_400_000, fsync: false });
    expect(c.retention[Tier.second]).toBe(2 * 3_600_000);
    expect(c.retention[Tier.day]).toBe(5 * 365 * 86_400_000);
    expect(c.bodyLimitBytes).toBe(1024 * 1024);

    const d = config(
      parseCli(
        ['--id', 'n2', '--port', '7002', '--peers', '127.0.0.1:7001, 127.0.0.1:7003', '--data', '/tmp/x', '--secret', 's3', '--advertise', 'n2.local:7002', '--static', '--max-clock-skew', '2s', '--retention-1s', '30m', '--retention-1d', '10y', '--body-limit', '64kb', '--fsync', '--forget-after', '1h'],
        {},
      ),
    );
    expect(d).toMatchObject({ port: 7002, peers: ['127.0.0.1:7001', '127.0.0.1:7003'], dataDir: '/tmp/x', secret: 's3', advertise: 'n2.local:7002', static: true, maxClockSkewMs: 2000, bodyLimitBytes: 65_536, fsync: true, forgetAfterMs: 3_600_000 });
    expect(d.retention[Tier.second]).toBe(30 * 60_000);
    expect(d.retention[Tier.day]).toBe(10 * 365 * 86_400_000);
  });

  it('--hot-horizon follows --retention-1s unless given, and --cold-cache takes a count', () => {
    expect(config(parseCli(['--id', 'n1'], {})).hotHorizonMs).toBe(2 * 3_600_000);
    expect(config(parseCli(['--id', 'n1', '--retention-1s', '30m'], {})).hotHorizonMs).toBe(30 * 60_000);
    expect(config(parseCli(['--id', 'n1', '--hot-horizon', '6h', '--cold-cache', '5000'], {}))).toMatchObject({ hotHorizonMs: 6 * 3_600_000, coldCacheEntries: 5000 });
    expect(config(parseCli(['--id', 'n1'], { HITMESH_HOT_HORIZON: '90m' })).hotHorizonMs).toBe(90 * 60_000);
  });

  it('reads environment variables, and a flag wins over its variable', () => {
    const env = { HITMESH_ID: 'envnode', HITMESH_PORT: '7100', HITMESH_STATIC: 'true', HITMESH_PEERS: '127.0.0.1:1', HITMESH_FSYNC: '1' };
    expect(config(parseCli([], env))).toMatchObject({ id: 'envnode', port: 7100, static: true, peers: ['127.0.0.1:1'], fsync: true });
    expect(config(parseCli(['--port', '7200'], env)).port).toBe(7200);
  });

  it.each([
    [['--port', '70000'], /--port/],
    [['--port', 'abc'], /--port/],
    [['--id', 'bad id!'], /--id/],
    [['--peers', 'nocolon'], /--peers/],
    [['--peers', 'host:99999'], /--peers/],
    [['--peers', 'a b:7001'], /--peers/],
    [['--advertise', 'host:0'], /--advertise/],
    [['--forget-after', '10ms'], /--forget-after/],
    [['--max-clock-skew', 'fast'], /--max-clock-skew/],
    [['--retention-1s', '3d'], /at least as long/],
    [['--retention-1m', '10s'], /at least 1m/],
    [['--body-limit', '10'], /--body-limit/],
    [['--hot-horizon', '30s'], /--hot-horizon/],
    [['--cold-cache', '0'], /--cold-cache/],
    [['--log-level', 'loud'], /--log-level/],
    [['--peers-dns', 'peers.svc'], /--peers-dns must be host:port/],
    [['--peers-dns', 'peers.svc:7001', '--dns-server', 'kube-dns.kube-system:53'], /--dns-server must be IP:port/],
    [['--peers-dns', 'peers.svc:7001', '--dns-server', '10.96.0.10'], /--dns-server must be IP:port/],
    [['--dns-server', '127.0.0.1:53'], /only used by --peers-dns/],
    [['--peers-dns', 'peers.svc:7001', '--peers-dns-interval', '10ms'], /--peers-dns-interval/],
    [['--api-token', 'short'], /--api-token must be 16-512/],
    [['--tls-cert', 'a.pem'], /go together/],
    [['--nope'], /Unknown option/],
    [['positional'], /positional/i],
  ])('refuses %j with a clear message', (argv, message) => {
    expect(() => parseCli(['--id', 'n1', ...argv], {})).toThrow(CliError);
    expect(() => parseCli(['--id', 'n1', ...argv], {})).toThrow(message);
  });

  it('takes --peers-dns as a name with a port, an absolute name (trailing dot) too', () => {
    for (const name of ['hitmesh-peers.default.svc.cluster.local:7001', 'hitmesh-peers.default.svc.cluster.local.:7001']) {
      const cli = parseCli(['--id', 'n1', '--peers-dns', name], {});
      expect(cli.kind === 'run' ? cli.config.peersDns : undefined).toBe(name);
    }
    expect(() => parseCli(['--id', 'n1', '--peers-dns', 'a..:7001'], {})).toThrow(/--peers-dns must be host:port/);
  });

  it('takes --dns-server as an IPv4 or bracketed IPv6 address with a port', () => {
    for (const server of ['10.96.0.10:53', '[fd00::a]:5353']) {
      const cli = parseCli(['--id', 'n1', '--peers-dns', 'peers.svc:7001', '--dns-server', server], {});
      expect(cli.kind === 'run' ? cli.config.dnsServer : undefined).toBe(server);
    }
  });

  it('refuses a non-loopback host without a secret, and says why', () => {
    expect(() => parseCli(['--id', 'n1', '--host', '0.0.0.0'], {})).toThrow(/not a loopback address and no --secret/);
    expect(config(parseCli(['--id', 'n1', '--host', '0.0.0.0', '--secret', 's'], {})).host).toBe('0.0.0.0');
    expect(config(parseCli(['--id', 'n1', '--host', '0.0.0.0', '--insecure'], {})).insecure).toBe(true);
    expect(config(parseCli(['--id', 'n1', '--host', '127.0.0.2'], {})).host).toBe('127.0.0.2');
  });

  it('--help lists every flag with its variable', () => {
    const result = parseCli(['--help'], {});
    expect(result.kind).toBe('help');
    for (const flag of ['--id', '--host', '--port', '--peers', '--data', '--secret', '--advertise', '--static', '--max-clock-skew', '--insecure']) {
      expect(helpText()).toContain(flag);
    }
    expect(helpText()).toContain('HITMESH_MAX_CLOCK_SKEW');
  });
});
