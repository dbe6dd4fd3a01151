/**
 * Gossip frames through msgpackr with and without its native extension
 * (msgpackr-extract, an install script the package approves). The extension
 * speeds up decoding strings; a delta frame is mostly keys. Each side runs in
 * a child process pinned to one core (the switch is an environment variable
 * read at import), in alternating rounds; medians and the ratio.
 *
 *   tsx scripts/bench/msgpack.ts child   (one round: prints JSON)
 */
import { execFileSync } from 'node:child_process';
import { Packr, isNativeAccelerationEnabled } from 'msgpackr';

interface Round {
  readonly native: boolean;
  readonly frameBytes: number;
  readonly encodeUs: number;
  readonly decodeUs: number;
}

/** A delta frame as the core cuts them: 2,000 rows of [key, second, s, m, h, d, lifetime], keys like page paths. */
function deltaFrame(): Record<string, unknown> {
  const hits: (string | number)[] = [];
  for (let i = 0; i < 2_000; i++) hits.push(`/articles/2026/12/page-${i.toString(36).padStart(5, '0')}`, 1_790_000_000 + (i % 60), 3, 1, 0, 0, 17 + i);
  return { type: 'delta', origin: 'n1-5f3a9c2e', from: 1_000, to: 3_000, at: 1_790_000_060_000, base: 1_790_000_000, hits, slots: [] };
}

function child(): void {
  const packr = new Packr({ useRecords: false, mapsAsObjects: true });
  const frame = deltaFrame();
  const bytes = packr.pack(frame);
  const time = (n: number, f: () => unknown): number => {
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) f();
    return Number(process.hrtime.bigint() - start) / 1_000 / n;
  };
  // Warm the JIT first, then measure.
  time(200, () => packr.unpack(packr.pack(frame)));
  const round: Round = {
    native: isNativeAccelerationEnabled,
    frameBytes: bytes.length,
    encodeUs: time(500, () => packr.pack(frame)),
    decodeUs: time(500, () => packr.unpack(bytes)),
  };
  console.log(JSON.stringify(round));
}

const medianOf = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

export interface MsgpackFigures {
  readonly frameBytes: number;
  readonly native: { encodeUs: number; decodeUs: number; decodeRange: [number, number] };
  readonly js: { encodeUs: number; decodeUs: number; decodeRange: [number, number] };
  readonly decodeSpeedup: number;
  readonly encodeRatio: number;
}

export function benchMsgpack(options: { readonly cpu: number; readonly rounds: number; readonly say: (line: string) => void }): MsgpackFigures {
  const runs: { native: Round[]; js: Round[] } = { native: [], js: [] };
  for (let r = 0; r < options.rounds; r++) {
    for (const side of ['native', 'js'] as const) {
      const env = { ...process.env, MSGPACKR_NATIVE_ACCELERATION_DISABLED: side === 'js' ? 'true' : 'false' };
      const out = execFileSync('taskset', ['-c', String(options.cpu), process.execPath, '--import', 'tsx', 'scripts/bench/msgpack.ts', 'child'], { env, encoding: 'utf8' });
      const round = JSON.parse(out) as Round;
      if (round.native !== (side === 'native')) throw new Error(`msgpack bench: wanted native=${side === 'native'}, the child had ${round.native} (is msgpackr-extract built?)`);
      runs[side].push(round);
    }
  }
  const sum = (rs: readonly Round[]): { encodeUs: number; decodeUs: number; decodeRange: [number, number] } => ({
    encodeUs: medianOf(rs.map((r) => r.encodeUs)),
    decodeUs: medianOf(rs.map((r) => r.decodeUs)),
    decodeRange: [Math.min(...rs.map((r) => r.decodeUs)), Math.max(...rs.map((r) => r.decodeUs))],
  });
  const native = sum(runs.native);
  const js = sum(runs.js);
  const figures: MsgpackFigures = { frameBytes: runs.native[0]?.frameBytes ?? 0, native, js, decodeSpeedup: js.decodeUs / native.decodeUs, encodeRatio: js.encodeUs / native.encodeUs };
  const us = (x: number): string => x.toFixed(0);
  options.say(`msgpack: a ${(figures.frameBytes / 1024).toFixed(0)} KiB delta frame (2,000 rows), median of ${options.rounds} alternating rounds`);
  options.say(`  decode  native ${us(native.decodeUs)} µs (${us(native.decodeRange[0])}-${us(native.decodeRange[1])})  js ${us(js.decodeUs)} µs (${us(js.decodeRange[0])}-${us(js.decodeRange[1])})  native is ${figures.decodeSpeedup.toFixed(2)}x faster`);
  options.say(`  encode  native ${us(native.encodeUs)} µs  js ${us(js.encodeUs)} µs  (the extension does not encode: ratio ${figures.encodeRatio.toFixed(2)})`);
  return figures;
}

if (process.argv[2] === 'child') child();
