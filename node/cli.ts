import { hostname } from 'node:os';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { isAddress, isNodeId, splitAddress } from '../crdt/names.ts';
import { retentionProblem } from '../crdt/retention.ts';
import { Tier } from '../crdt/tiers.ts';
import { DEFAULTS, type NodeConfig, type TlsFiles } from './config.ts';
import { formatDuration, parseDuration } from './duration.ts';

/** A bad flag or flag combination; main prints the message and exits 2. */
export class CliError extends Error {
  readonly code = 'HITMESH_BAD_FLAG';
}

interface FlagSpec {
  readonly flag: string;
  readonly value: string | undefined; // placeholder; undefined for a switch
  readonly help: string;
  readonly fallback: string;
}

const FLAGS: readonly FlagSpec[] = [
  { flag: 'id', value: 'NAME', help: 'human name of the node (shown in APIs, metrics, logs)', fallback: 'hostname' },
  { flag: 'host', value: 'ADDR', help: 'address to bind', fallback: DEFAULTS.host },
  { flag: 'port', value: 'PORT', help: 'HTTP port; gossip is served on the same port at /gossip (0 = any free port)', fallback: String(DEFAULTS.port) },
  { flag: 'peers', value: 'LIST', help: 'comma list of host:port of seed peers', fallback: 'none' },
  { flag: 'data', value: 'DIR', help: 'LevelDB directory', fallback: './data/<id>' },
  { flag: 'secret', value: 'TEXT', help: 'cluster secret; peers prove it on the gossip handshake', fallback: 'none' },
  { flag: 'advertise', value: 'HOST:PORT', help: 'address other nodes should dial for this node', fallback: 'host:port' },
  { flag: 'static', value: undefined, help: 'dial only --peers and learn no other addresses', fallback: 'off' },
  { flag: 'max-clock-skew', value: 'DUR', help: 'largest clock offset from peers before the node stops taking hits', fallback: formatDuration(DEFAULTS.maxClockSkewMs) },
  { flag: 'forget-after', value: 'DUR', help: 'a member down this long is forgotten (no longer dialed, not counted)', fallback: formatDuration(DEFAULTS.forgetAfterMs) },
  { flag: 'fsync', value: undefined, help: 'acknowledge a hit only once its batch is fsynced (survives power loss; slower)', fallback: 'off' },
  { flag: 'insecure', value: undefined, help: 'allow a non-loopback --host without --secret', fallback: 'off' },
  { flag: 'retention-1s', value: 'DUR', help: 'how long the 1 s tier keeps its buckets', fallback: formatDuration(DEFAULTS.retention[Tier.second]) },
  { flag: 'retention-1m', value: 'DUR', help: 'how long the 1 min tier keeps its buckets', fallback: formatDuration(DEFAULTS.retention[Tier.minute]) },
  { flag: 'retention-1h', value: 'DUR', help: 'how long the 1 h tier keeps its buckets', fallback: formatDuration(DEFAULTS.retention[Tier.hour]) },
  { flag: 'retention-1d', value: 'DUR', help: 'how long the 1 day tier keeps its buckets', fallback: formatDuration(DEFAULTS.retention[Tier.day]) },
  { flag: 'body-limit', value: 'BYTES', help: 'largest request body (accepts kb, mb)', fallback: '1mb' },
  { flag: 'gc-interval', value: 'DUR', help: 'how often expired buckets are deleted', fallback: formatDuration(DEFAULTS.gcIntervalMs) },
  { flag: 'checkpoint-interval', value: 'DUR', help: 'how often the write-ahead log is folded into slots', fallback: formatDuration(DEFAULTS.checkpointIntervalMs) },
  { flag: 'push-interval', value: 'DUR', help: 'how often local hits are pushed to peers, batched', fallback: formatDuration(DEFAULTS.pushIntervalMs) },
  { flag: 'sync-interval', value: 'DUR', help: 'how often peers swap version vectors (anti-entropy) and heartbeats', fallback: formatDuration(DEFAULTS.syncIntervalMs) },
  { flag: 'max-tokens', value: 'N', help: 'most Idempotency-Key tokens held, own and peers\' (about 200 B each, kept a 1 s-tier retention); past it hits with a new token are refused (503)', fallback: String(DEFAULTS.maxTokens) },
  { flag: 'hot-horizon', value: 'DUR', help: 'minute, hour and day buckets stay in memory until this long after they end, then are read from the store through a cache (at least 1m)', fallback: 'the 1 s tier\'s retention' },
  { flag: 'cold-cache', value: 'N', help: 'most counts of buckets past the hot horizon cached in memory (about 100 B each, estimated)', fallback: String(DEFAULTS.coldCacheEntries) },
  { flag: 'top-exact-keys', value: 'N', help: 'GET /top counts every key when its index cannot prove the ranking, while the node holds at most N keys; past it the answer is exact:false with maxError', fallback: String(DEFAULTS.topExactKeys) },
  { flag: 'no-top-index', value: undefined, help: 'run without the ranking index of GET /top (every ranking then counts every key)', fallback: 'off' },
  { flag: 'api-token', value: 'TEXT', help: 'clients must send Authorization: Bearer <token> (every route but /healthz, /readyz and the static pages)', fallback: 'none' },
  { flag: 'tls-cert', value: 'FILE', help: 'PEM certificate (chain): serve HTTPS and wss gossip (with --tls-key)', fallback: 'none' },
  { flag: 'tls-key', value: 'FILE', help: 'PEM private key of --tls-cert', fallback: 'none' },
  { flag: 'tls-ca', value: 'FILE', help: 'PEM CA: peers dialed and dialing in must show a certificate that chains to it', fallback: 'none' },
  { flag: 'peers-dns', value: 'HOST:PORT', help: 'seed peers are the A/AAAA records of HOST, on PORT, re-resolved periodically (a headless Service)', fallback: 'none' },
  { flag: 'peers-dns-interval', value: 'DUR', help: 'how often --peers-dns is resolved again', fallback: formatDuration(DEFAULTS.peersDnsIntervalMs) },
  { flag: 'dns-server', value: 'HOST:PORT', help: 'the DNS server --peers-dns asks, instead of the system resolver', fallback: 'system' },
  { flag: 'max-connections', value: 'N', help: 'most HTTP connections open at once, gossip ones from peers included; more are refused', fallback: String(DEFAULTS.maxConnections) },
  { flag: 'log-level', value: 'LEVEL', help: 'fatal, error, warn, info, debug, trace or silent', fallback: DEFAULTS.logLevel },
];

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

export function envName(flag: string): string {
  return `HITMESH_${flag.toUpperCase().replaceAll('-', '_')}`;
}

export function helpText(): string {
  const rows = FLAGS.map((f) => {
    const left = `  --${f.flag}${f.value === undefined ? '' : ` ${f.value}`}`;
    return `${left.padEnd(30)}${f.help} [${envName(f.flag)}] (default: ${f.fallback})`;
  });
  return [
    'hitmesh node: a peer-to-peer hit counter replica',
    '',
    'usage: npm run node -- [flags]',
    '',
    ...rows,
    '  --help                      print this and exit',
    '',
    'Every flag can also be set by its environment variable; a flag wins over the variable.',
  ].join('\n');
}

export type CliResult = { readonly kind: 'help'; readonly text: string } | { readonly kind: 'run'; readonly config: NodeConfig };

export function parseCli(argv: readonly string[], env: NodeJS.ProcessEnv): CliResult {
  const options: Record<string, { type: 'string' | 'boolean' }> = { help: { type: 'boolean' } };
  for (const f of FLAGS) options[f.flag] = { type: f.value === undefined ? 'boolean' : 'string' };
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }));
  } catch (error) {
    throw new CliError(`${error instanceof Error ? error.message : String(error)} (see --help)`);
  }
  if (values.help === true) return { kind: 'help', text: helpText() };

  const text = (flag: string): string | undefined => {
    const v = values[flag];
    if (typeof v === 'string') return v;
    const fromEnv = env[envName(flag)];
    return fromEnv === undefined || fromEnv === '' ? undefined : fromEnv;
  };
  const on = (flag: string): boolean => {
    if (values[flag] === true) return true;
    const fromEnv = env[envName(flag)];
    if (fromEnv === undefined || fromEnv === '') return false;
    if (/^(1|true|yes|on)$/i.test(fromEnv)) return true;
    if (/^(0|false|no|off)$/i.test(fromEnv)) return false;
    throw new CliError(`${envName(flag)} must be true or false, got ${JSON.stringify(fromEnv)}`);
  };
  const duration = (flag: string, fallback: number, min: number): number => {
    const raw = text(flag);
    if (raw === undefined) return fallback;
    const ms = parseDuration(raw, true);
    if (ms === undefined) throw new CliError(`--${flag} must be a duration like 500ms, 30s, 5m, 2h, 7d, 5y; got ${JSON.stringify(raw)}`);
    if (ms < min) throw new CliError(`--${flag} must be at least ${formatDuration(min)}`);
    return ms;
  };

  const id = text('id') ?? defaultId();
  if (!isNodeId(id)) throw new CliError(`--id must be 1-64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit; got ${JSON.stringify(id)}`);

  const host = text('host') ?? DEFAULTS.host;
  const port = parsePort(text('port') ?? String(DEFAULTS.port));
  const peers = (text('peers') ?? '').split(',').map((p) => p.trim()).filter((p) => p !== '');
  for (const peer of peers) {
    if (!isHostPort(peer)) throw new CliError(`--peers must be a comma list of host:port; ${JSON.stringify(peer)} is not`);
  }
  const advertise = text('advertise') ?? `${host}:${port}`;
  if (!isHostPort(advertise) && !(port === 0 && text('advertise') === undefined)) {
    throw new CliError(`--advertise must be host:port, got ${JSON.stringify(advertise)}`);
  }
  const secret = text('secret');
  const insecure = on('insecure');
  if (!isLoopback(host) && secret === undefined && !insecure) {
    throw new CliError(
      `refusing to bind ${host}: it is not a loopback address and no --secret is set, so anyone who can reach it could join the cluster and write counts. Set --secret (or HITMESH_SECRET), or pass --insecure if the network is trusted.`,
    );
  }
  const tls = tlsFiles(text('tls-cert'), text('tls-key'), text('tls-ca'));
  const peersDns = text('peers-dns');
  // A trailing dot (an absolute name) is allowed here: it spares each resolution the pod's search list (ndots:5).
  if (peersDns !== undefined && !isHostPort(peersDns.replace(/\.:(\d+)$/, ':$1'))) throw new CliError(`--peers-dns must be host:port (a DNS name and the port its nodes listen on), got ${JSON.stringify(peersDns)}`);
  const dnsServer = text('dns-server');
  // The resolver takes IP addresses only (a name would need a DNS server to find the DNS server).
  if (dnsServer !== undefined && (!isHostPort(dnsServer) || isIP(splitAddress(dnsServer).host) === 0)) {
    throw new CliError(`--dns-server must be IP:port (e.g. 10.96.0.10:53 or [fd00::a]:53), got ${JSON.stringify(dnsServer)}`);
  }
  if (dnsServer !== undefined && peersDns === undefined) throw new CliError('--dns-server is only used by --peers-dns, which is not set');
  // The placeholders of deploy/k8s/secret.example.yaml are public: applying the example unchanged must not start a node.
  for (const flag of ['secret', 'api-token'] as const) {
    if (text(flag)?.startsWith('REPLACE-ME') === true) throw new CliError(`--${flag} is still the example's placeholder (REPLACE-ME…); generate one with: openssl rand -hex 32`);
  }
  const apiToken = text('api-token');
  if (apiToken !== undefined && !/^[\x21-\x7e]{16,512}$/.test(apiToken)) {
    throw new CliError('--api-token must be 16-512 printable ASCII characters without spaces (it travels in an HTTP header); generate one with: openssl rand -hex 32');
  }
  const retention = {
    [Tier.second]: duration('retention-1s', DEFAULTS.retention[Tier.second], 1_000),
    [Tier.minute]: duration('retention-1m', DEFAULTS.retention[Tier.minute], 60_000),
    [Tier.hour]: duration('retention-1h', DEFAULTS.retention[Tier.hour], 3_600_000),
    [Tier.day]: duration('retention-1d', DEFAULTS.retention[Tier.day], 86_400_000),
  };
  const problem = retentionProblem(retention);
  if (problem !== undefined) throw new CliError(`bad retention: ${problem}`);
  const logLevel = text('log-level') ?? DEFAULTS.logLevel;
  if (!LOG_LEVELS.has(logLevel)) throw new CliError(`--log-level must be one of ${[...LOG_LEVELS].join(', ')}; got ${JSON.stringify(logLevel)}`);

  return {
    kind: 'run',
    config: {
      id,
      host,
      port,
      peers,
      dataDir: text('data') ?? `./data/${id}`,
      secret,
      advertise,
      static: on('static'),
      maxClockSkewMs: duration('max-clock-skew', DEFAULTS.maxClockSkewMs, 1),
      forgetAfterMs: duration('forget-after', DEFAULTS.forgetAfterMs, 1_000),
      fsync: on('fsync'),
      insecure,
      retention,
      bodyLimitBytes: parseBytes(text('body-limit')),
      gcIntervalMs: duration('gc-interval', DEFAULTS.gcIntervalMs, 100),
      checkpointIntervalMs: duration('checkpoint-interval', DEFAULTS.checkpointIntervalMs, 10),
      pushIntervalMs: duration('push-interval', DEFAULTS.pushIntervalMs, 1),
      syncIntervalMs: duration('sync-interval', DEFAULTS.syncIntervalMs, 50),
      logLevel,
      maxConnections: parseInteger('max-connections', text('max-connections'), DEFAULTS.maxConnections, 1, 1_000_000),
      maxTokens: parseInteger('max-tokens', text('max-tokens'), DEFAULTS.maxTokens, 0, 100_000_000),
      hotHorizonMs: duration('hot-horizon', retention[Tier.second], 60_000),
      coldCacheEntries: parseInteger('cold-cache', text('cold-cache'), DEFAULTS.coldCacheEntries, 1, 100_000_000),
      topIndex: !on('no-top-index'),
      topExactKeys: parseInteger('top-exact-keys', text('top-exact-keys'), DEFAULTS.topExactKeys, 0, 100_000_000),
      apiToken,
      tls,
      peersDns,
      peersDnsIntervalMs: duration('peers-dns-interval', DEFAULTS.peersDnsIntervalMs, 100),
      dnsServer,
    },
  };
}

function tlsFiles(cert: string | undefined, key: string | undefined, ca: string | undefined): TlsFiles | undefined {
  if ((cert === undefined) !== (key === undefined)) throw new CliError('--tls-cert and --tls-key go together: give both or neither');
  if (cert === undefined || key === undefined) {
    if (ca !== undefined) throw new CliError('--tls-ca needs --tls-cert and --tls-key: a node that verifies its peers must show them a certificate too');
    return undefined;
  }
  return { certFile: cert, keyFile: key, caFile: ca };
}

/** Every environment variable a node reads (deploy/ manifests are checked against it). */
export function envNames(): string[] {
  return FLAGS.map((f) => envName(f.flag));
}

function defaultId(): string {
  const name = hostname().replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 64);
  return name === '' ? 'node' : name;
}

function parsePort(raw: string): number {
  if (!/^[0-9]{1,5}$/.test(raw) || Number(raw) > 65_535) throw new CliError(`--port must be an integer in 0..65535, got ${JSON.stringify(raw)}`);
  return Number(raw);
}

function parseInteger(flag: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  const n = /^[0-9]{1,10}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= min && n <= max)) throw new CliError(`--${flag} must be an integer in ${min}..${max}, got ${JSON.stringify(raw)}`);
  return n;
}

function parseBytes(raw: string | undefined): number {
  if (raw === undefined) return DEFAULTS.bodyLimitBytes;
  const match = /^([0-9]{1,10})(b|kb|mb)?$/i.exec(raw);
  const scale = { b: 1, kb: 1024, mb: 1024 * 1024 }[(match?.[2] ?? 'b').toLowerCase() as 'b' | 'kb' | 'mb'];
  const bytes = match === null ? NaN : Number(match[1]) * scale;
  if (!(bytes >= 1024 && bytes <= 64 * 1024 * 1024)) throw new CliError(`--body-limit must be between 1kb and 64mb, got ${JSON.stringify(raw)}`);
  return bytes;
}

/** host:port as peers dial it: the grammar gossip checks addresses against (crdt/names.ts). */
export const isHostPort = isAddress;

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
