import { Resolver, lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

/** --peers-dns: the name's A/AAAA records, on `port`, are seed peers, resolved every `intervalMs`. */
export interface DnsSeedOptions {
  readonly host: string;
  readonly port: number;
  readonly intervalMs: number;
  /** host:port of the DNS server to ask; undefined: the system resolver (getaddrinfo, so /etc/hosts and search domains apply). */
  readonly server: string | undefined;
}

export type DnsResult = 'ok' | 'empty' | 'error';

export interface DnsSeedEvents {
  /** Every resolution's outcome; `addresses` is the seed set in force after it (the last good one on empty or error). */
  resolved(result: DnsResult, addresses: readonly string[], detail: { changed: boolean; error?: unknown; cut: boolean }): void;
}

/** How long one query may take before it counts as an error (the next tick asks again). */
const QUERY_TIMEOUT_MS = 2_000;

/** "10.0.0.5:7001" or "[fd00::5]:7001": the gossip address grammar. */
export function seedAddress(ip: string, port: number): string {
  return isIP(ip) === 6 ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/**
 * Resolves the seed name now and every interval. One resolution at a time (a
 * slow server does not pile them up); an empty answer or a failure keeps the
 * last good set, so a DNS outage does not make a node forget where its peers
 * are. Timers are unref'd: they never keep a process alive.
 */
export class DnsSeeds {
  private addresses: readonly string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stopped = false;
  private resolvedOnce = false;
  private readonly resolver: Resolver | undefined;

  constructor(
    private readonly options: DnsSeedOptions & {
      /** Most addresses taken from one answer (the member limit): a larger answer is sorted and cut. */
      readonly maxAddresses: number;
    },
    private readonly apply: (addresses: readonly string[]) => void,
    private readonly events: DnsSeedEvents,
  ) {
    if (options.server !== undefined) {
      this.resolver = new Resolver({ timeout: QUERY_TIMEOUT_MS, tries: 1 });
      this.resolver.setServers([options.server]);
    }
  }

  /** Has one resolution finished (whatever its outcome)? Start-up waits for it before counting its seeds settled. */
  get settled(): boolean {
    return this.resolvedOnce;
  }

  get current(): readonly string[] {
    return this.addresses;
  }

  start(): void {
    void this.tick();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
  }

  /** Resolve once, apply, and schedule the next. Never throws. */
  private async tick(): Promise<void> {
    if (this.running || this.stopped) return;
    this.running = true;
    try {
      await this.resolveOnce();
    } finally {
      this.running = false;
      this.resolvedOnce = true;
      if (!this.stopped) {
        this.timer = setTimeout(() => void this.tick(), this.options.intervalMs);
        this.timer.unref();
      }
    }
  }

  private async resolveOnce(): Promise<void> {
    let ips: string[];
    try {
      ips = await this.query();
    } catch (error) {
      this.events.resolved('error', this.addresses, { changed: false, error, cut: false });
      return;
    }
    if (this.stopped) return;
    if (ips.length === 0) {
      this.events.resolved('empty', this.addresses, { changed: false, cut: false });
      return;
    }
    const all = [...new Set(ips.map((ip) => seedAddress(ip, this.options.port)))].sort();
    const next = all.slice(0, this.options.maxAddresses);
    const changed = next.length !== this.addresses.length || next.some((a, i) => a !== this.addresses[i]);
    this.addresses = next;
    if (changed) this.apply(next);
    this.events.resolved('ok', next, { changed, cut: all.length > next.length });
  }

  /** The name's IPv4 and IPv6 addresses. A family with no records is not an error; both failing is. */
  private async query(): Promise<string[]> {
    const { host } = this.options;
    if (isIP(host) !== 0) return [host];
    if (this.resolver === undefined) {
      try {
        return (await lookup(host, { all: true })).map((a) => a.address);
      } catch (error) {
        if (isNoRecords(error)) return [];
        throw error;
      }
    }
    const answers = await Promise.allSettled([this.resolver.resolve4(host), this.resolver.resolve6(host)]);
    const ips = answers.flatMap((a) => (a.status === 'fulfilled' ? a.value : []));
    const failures = answers.filter((a): a is PromiseRejectedResult => a.status === 'rejected' && !isNoRecords(a.reason));
    if (ips.length === 0 && failures.length > 0) throw failures[0]?.reason;
    return ips;
  }
}

/** ENODATA (the name has no records of that type) and ENOTFOUND (no such name) are answers, not failures. */
function isNoRecords(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'ENODATA' || code === 'ENOTFOUND';
}
