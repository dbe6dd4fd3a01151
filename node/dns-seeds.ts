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
/** Until the name has answered once, a failure is retried this soon (start-up is waiting for it), not an interval later. */
const FIRST_ANSWER_RETRY_MS = 250;

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
  /** The IPs of the last answer by family, for a family whose next query fails. */
  private lastIps: { v4: readonly string[]; v6: readonly string[] } = { v4: [], v6: [] };
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stopped = false;
  private resolvedOnce = false;
  /** A system lookup that timed out may still hold a libuv thread: no second one starts until it ends. */
  private lookupInFlight = false;
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

  /** Has the name answered once (with records or with none)? Start-up waits for it before counting its seeds settled. */
  get settled(): boolean {
    return this.resolvedOnce;
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
      if ((await this.resolveOnce()) !== 'error') this.resolvedOnce = true;
    } finally {
      this.running = false;
      if (!this.stopped) {
        const delay = this.resolvedOnce ? this.options.intervalMs : Math.min(this.options.intervalMs, FIRST_ANSWER_RETRY_MS);
        this.timer = setTimeout(() => void this.tick(), delay);
        this.timer.unref();
      }
    }
  }

  private async resolveOnce(): Promise<DnsResult> {
    let ips: string[];
    try {
      ips = await this.query();
    } catch (error) {
      if (!this.stopped) this.events.resolved('error', this.addresses, { changed: false, error, cut: false });
      return 'error';
    }
    if (this.stopped) return 'ok';
    if (ips.length === 0) {
      this.events.resolved('empty', this.addresses, { changed: false, cut: false });
      return 'empty';
    }
    const all = [...new Set(ips.map((ip) => seedAddress(ip, this.options.port)))].sort();
    const next = all.slice(0, this.options.maxAddresses);
    const changed = next.length !== this.addresses.length || next.some((a, i) => a !== this.addresses[i]);
    this.addresses = next;
    if (changed) this.apply(next);
    this.events.resolved('ok', next, { changed, cut: all.length > next.length });
    return 'ok';
  }

  /**
   * The name's addresses. With a DNS server, A and AAAA are asked apart: a
   * family with no records is an empty answer; a family whose query failed
   * while the other answered keeps its last addresses (so a server that
   * times out on every other AAAA query does not make the set flap).
   */
  private async query(): Promise<string[]> {
    const { host } = this.options;
    if (isIP(host) !== 0) return [host];
    if (this.resolver === undefined) return this.systemLookup(host);
    const answers = await Promise.allSettled([this.resolver.resolve4(host), this.resolver.resolve6(host)]);
    const failed = answers.filter((a): a is PromiseRejectedResult => a.status === 'rejected' && !isNoRecords(a.reason));
    if (failed.length === answers.length) throw failed[0]?.reason;
    const family = (answer: PromiseSettledResult<string[]> | undefined, last: readonly string[]): readonly string[] =>
      answer?.status === 'fulfilled' ? answer.value : answer !== undefined && isNoRecords(answer.reason) ? [] : last;
    const next = { v4: family(answers[0], this.lastIps.v4), v6: family(answers[1], this.lastIps.v6) };
    // Like the addresses, kept from the last answer that had any (an empty one changes nothing).
    if (next.v4.length + next.v6.length > 0) this.lastIps = next;
    return [...next.v4, ...next.v6];
  }

  /** getaddrinfo has no timeout of its own: give up waiting after QUERY_TIMEOUT_MS (the lookup itself runs on). */
  private async systemLookup(host: string): Promise<string[]> {
    if (this.lookupInFlight) throw new Error(`the previous lookup of ${host} has not ended yet`);
    this.lookupInFlight = true;
    const found = lookup(host, { all: true }).finally(() => (this.lookupInFlight = false));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`lookup of ${host} took longer than ${QUERY_TIMEOUT_MS} ms`)), QUERY_TIMEOUT_MS);
      timer.unref();
    });
    try {
      return (await Promise.race([found, timeout])).map((a) => a.address);
    } catch (error) {
      if (isNoRecords(error)) return [];
      throw error;
    } finally {
      clearTimeout(timer);
      // A lookup that lost the race must not become an unhandled rejection.
      found.catch(() => undefined);
    }
  }
}

/** ENODATA (the name has no records of that type) and ENOTFOUND (no such name) are answers, not failures. */
function isNoRecords(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'ENODATA' || code === 'ENOTFOUND';
}
