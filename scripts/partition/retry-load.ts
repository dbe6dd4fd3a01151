/**
 * The `retry` experiment's clients: from the cut until the heal, logical hits
 * at a steady rate, each `POST /hit/<key>?n=N` with an `Idempotency-Key` of
 * its own (unique to the run), on a seeded random key of their own and n of
 * 1-3. Many are retried the way a client whose answer was lost or slow would
 * retry: the same token and the same n again, on a node of the other side of
 * the cut, on the same node, there and back, several times, at once or after
 * the answer, and some only after the heal. Every attempt's true answer goes
 * to the ledger (retry-ledger.ts); the client's "time-out" is a choice made
 * here, so the check knows what each node really took.
 */
import { finalCheck, type Scope } from './final-check.ts';
import { awaitAgreement, type RangeProbe } from './range-convergence.ts';
import type { Violation } from './report.ts';
import { MAX_FLAG_VIOLATIONS, RetryLedger, type Attempt, type AttemptAnswer, type LogicalHit, type RetryFlagViolation, type RetryTally } from './retry-ledger.ts';
import { pick } from './seeded.ts';
import { sleep } from './timing.ts';

export interface RetryLoadOptions {
  readonly targets: readonly { readonly id: string; readonly url: string }[];
  readonly sides: readonly [readonly string[], readonly string[]];
  readonly keys: readonly string[];
  /** Logical hits per second. */
  readonly rate: number;
  readonly random: () => number;
  /** Tokens are `<runId>-<n>`: unique to the run. */
  readonly runId: string;
  readonly timeoutMs?: number;
}

/** What the next attempt waits for: the previous one's answer (which the client then "lost"), nothing (it gave up early), or the heal. */
type Wait = 'answer' | 'none' | 'heal';

interface Step {
  readonly node: string;
  readonly wait: Wait;
  readonly gapMs: number;
}

/** How a logical hit is sent, with its weight. `x` is on the side it starts on, `y` on the other. */
const PATTERNS = [
  ['once', 3],
  ['lost', 2],
  ['slow', 2],
  ['there-and-back', 2],
  ['same-node', 1],
  ['same-node-race', 1],
  ['storm', 1],
  ['after-heal', 2],
] as const;

type Pattern = (typeof PATTERNS)[number][0];

/** The share of logical hits that end with the same token and another n on a node that took it (must be a 422). */
const CONFLICT_SHARE = 0.1;

function plan(pattern: Pattern, x: string, y: string, any: () => string, random: () => number): Step[] {
  const gap = (max: number): number => Math.floor(random() * max);
  const step = (node: string, wait: Wait, gapMs: number): Step => ({ node, wait, gapMs });
  const first = step(x, 'none', 0);
  switch (pattern) {
    case 'once':
      return [first];
    case 'lost':
      return [first, step(y, 'answer', gap(200))];
    case 'slow':
      return [first, step(y, 'none', gap(50))];
    case 'there-and-back':
      return [first, step(y, 'answer', gap(150)), step(x, 'answer', gap(150))];
    case 'same-node':
      return [first, step(x, 'answer', gap(100))];
    case 'same-node-race':
      return [first, step(x, 'none', gap(3))];
    case 'storm':
      return [first, ...Array.from({ length: 2 + gap(3) }, () => step(any(), random() < 0.5 ? 'answer' : 'none', gap(100)))];
    case 'after-heal':
      return [first, step(y, 'heal', gap(400)), ...(random() < 0.5 ? [step(x, 'answer', gap(100))] : [])];
  }
}

function weighted(random: () => number): Pattern {
  const total = PATTERNS.reduce((sum, [, w]) => sum + w, 0);
  let r = random() * total;
  for (const [pattern, w] of PATTERNS) if ((r -= w) < 0) return pattern;
  return 'once';
}

export class RetryLoad {
  readonly ledger: RetryLedger;
  private readonly chains = new Set<Promise<void>>();
  private readonly urls: ReadonlyMap<string, string>;
  private timer: NodeJS.Timeout | undefined;
  private startedAt = 0;
  private issued = 0;
  private healedNow: () => void = () => undefined;
  private readonly healed = new Promise<void>((resolve) => (this.healedNow = resolve));

  constructor(private readonly options: RetryLoadOptions) {
    this.ledger = new RetryLedger(options.sides, Date.now());
    this.urls = new Map(options.targets.map((t) => [t.id, t.url]));
  }

  start(): void {
    this.startedAt = performance.now();
    this.timer = setInterval(() => this.tick(), 20);
  }

  /** The links are healed: no new logical hits; retries waiting for the heal go now. */
  heal(): void {
    clearInterval(this.timer);
    this.ledger.healedAt ??= Date.now();
    this.healedNow();
  }

  /** Stop, and wait until every logical hit's last attempt is answered or given up. Releases retries still waiting for a heal. */
  async drain(): Promise<void> {
    clearInterval(this.timer);
    this.healedNow();
    while (this.chains.size > 0) await Promise.all([...this.chains]);
  }

  private tick(): void {
    const due = Math.floor(((performance.now() - this.startedAt) / 1000) * this.options.rate);
    while (this.issued < due) this.issue(++this.issued);
  }

  private issue(i: number): void {
    const { sides, keys, random, runId } = this.options;
    const home = random() < 0.5 ? 0 : 1;
    const x = pick(sides[home], random);
    const y = pick(sides[1 - home] ?? [], random);
    const all = [...sides[0], ...sides[1]];
    const steps = plan(weighted(random), x, y, () => pick(all, random), random);
    const hit = this.ledger.add(`${runId}-${i}`, pick(keys, random), 1 + Math.floor(random() * 3));
    const chain = this.run(hit, steps, random() < CONFLICT_SHARE).finally(() => this.chains.delete(chain));
    this.chains.add(chain);
  }

  private async run(hit: LogicalHit, steps: readonly Step[], conflict: boolean): Promise<void> {
    const sent: Promise<Attempt>[] = [];
    for (const step of steps) {
      const previous = sent.at(-1);
      if (step.wait === 'answer' && previous !== undefined) await previous;
      if (step.wait === 'heal') await this.healed;
      if (step.gapMs > 0) await sleep(step.gapMs);
      sent.push(this.send(hit, step.node, hit.n, false));
    }
    const done = await Promise.all(sent);
    const taker = done.find((a) => a.answer?.kind === 'acked');
    if (conflict && taker !== undefined) await this.send(hit, taker.node, hit.n + 1, true);
  }

  private async send(hit: LogicalHit, node: string, n: number, conflict: boolean): Promise<Attempt> {
    const url = this.urls.get(node);
    if (url === undefined) throw new Error(`no node ${node}`);
    const attempt: Attempt = { node, n, conflict, sentAt: Date.now(), answeredAt: 0, answer: undefined };
    hit.attempts.push(attempt);
    attempt.answer = await postIdempotent(url, hit.key, n, hit.token, this.options.timeoutMs ?? 3_000);
    attempt.answeredAt = Date.now();
    return attempt;
  }
}

/** POST /hit/<key>?n=<n> with `Idempotency-Key: <token>`, and what the answer proves. Never rejects. */
export async function postIdempotent(url: string, key: string, n: number, token: string, timeoutMs: number): Promise<AttemptAnswer> {
  let res: Response;
  try {
    res = await fetch(`${url}/hit/${encodeURIComponent(key)}?n=${n}`, { method: 'POST', headers: { 'idempotency-key': token }, signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    // Refused: no connection, so the node never saw it. Anything else (a timeout, a reset) may have reached it.
    return (error as { cause?: { code?: unknown } }).cause?.code === 'ECONNREFUSED' ? { kind: 'failed', status: 0 } : { kind: 'unknown' };
  }
  const text = await res.text().catch(() => undefined);
  if (res.status === 200) {
    try {
      const body = JSON.parse(text ?? '') as { duplicate?: unknown; at?: unknown };
      return { kind: 'acked', duplicate: typeof body.duplicate === 'boolean' ? body.duplicate : undefined, ...(Number.isInteger(body.at) ? { at: body.at as number } : {}) };
    } catch {
      // A 200 we cannot read: taken, but nothing we can check.
      return { kind: 'unknown' };
    }
  }
  if ((res.status >= 400 && res.status < 500) || res.status === 503) return { kind: 'failed', status: res.status };
  return { kind: 'unknown' };
}

/** The `retry` experiment's part of the report. */
export interface RetryReport extends RetryTally {
  readonly sides: readonly [readonly string[], readonly string[]];
  readonly keys: number;
  /** (node, retry key, range) counts checked, and those out of the ledger's bounds or unlike the other nodes'. */
  readonly checked: number;
  readonly violations: readonly Violation[];
  /** The first answers that broke the duplicate-flag or 422 rules (`flagViolations` counts them all). */
  readonly flags: readonly RetryFlagViolation[];
  /** Ms after the heal: when the last attempt was answered, and when every node first agreed on every retry key (null: not within the limit). */
  readonly lastAnswerMs: number | null;
  readonly agreedMs: number | null;
}

/** After the heal (ms since the load start): wait for every retry to end, then until every node agrees on the retry keys. */
export async function settleRetries(load: RetryLoad, probe: Omit<RangeProbe, 'ledger'>, healAtMs: number, deadlineMs: number): Promise<{ lastAnswerMs: number | null; agreedMs: number | null }> {
  await load.drain();
  const last = load.ledger.lastAnsweredAt();
  const lastAnswerMs = last === undefined ? null : Math.max(0, last - probe.epoch0 - healAtMs);
  const agreedAt = await awaitAgreement({ ...probe, ledger: load.ledger.toHitLedger(probe.nodes.map((n) => n.id)) }, [undefined], deadlineMs);
  return { lastAnswerMs, agreedMs: agreedAt === null ? null : agreedAt - healAtMs };
}

/** The final check of the retry keys over `scopes`, with the ledger's tally and flag violations. */
export async function checkRetries(
  load: RetryLoad,
  probe: Omit<RangeProbe, 'ledger'>,
  scopes: readonly Scope[],
  deadlineMs: number,
  settled: { lastAnswerMs: number | null; agreedMs: number | null },
): Promise<RetryReport> {
  const { ledger } = load;
  const { checks } = await finalCheck({ ...probe, ledger: ledger.toHitLedger(probe.nodes.map((n) => n.id)) }, scopes, deadlineMs);
  return { ...ledger.tally(), sides: ledger.sides, keys: probe.keys.length, checked: checks.total, violations: checks.violations, flags: ledger.flagViolations().slice(0, MAX_FLAG_VIOLATIONS), ...settled };
}

/** Held: no count or answer broke the contract, every node agreed, and the run did exercise what it is for. */
export function retryHeld(r: RetryReport): boolean {
  return r.violations.length === 0 && r.flagViolations === 0 && r.agreedMs !== null && retryGaps(r).length === 0;
}

/** What the run did not exercise (each makes it inconclusive, so not a pass). */
export function retryGaps(r: RetryReport): string[] {
  const gaps: string[] = [];
  if (r.acrossCut === 0) gaps.push('no retry crossed the cut while it held');
  if (r.acrossAfterHeal === 0) gaps.push('no retry crossed sides after the heal');
  if (r.bothSides === 0) gaps.push('no token was taken on both sides of the cut');
  if (r.sameNodeRepeats === 0) gaps.push('no node was asked again for a token it had answered');
  return gaps;
}
