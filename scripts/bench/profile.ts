/**
 * Reading a V8 CPU profile (`node --cpu-prof`): the frames that took the most
 * time of their own, and the files (ours, fastify, node internals) that did,
 * as shares of the busy time (idle samples left out).
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly hitCount?: number;
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples?: readonly number[];
  readonly timeDeltas?: readonly number[];
}

export interface ProfileFrame {
  readonly name: string;
  /** Share of the busy time spent in this frame itself (0..1). */
  readonly share: number;
}

export interface ProfileSummary {
  /** Busy time in the profile, ms. */
  readonly busyMs: number;
  readonly frames: readonly ProfileFrame[];
  /** Self time per group: our own code by top folder, dependencies by package, node's internals, GC. */
  readonly groups: readonly ProfileFrame[];
}

const root = process.cwd();

function place(url: string): string {
  if (url === '') return '';
  const path = url.startsWith('file://') ? new URL(url).pathname : url;
  return path.startsWith('/') ? relative(root, path) : path;
}

function groupOf(url: string, name: string): string {
  if (name === '(garbage collector)') return 'GC';
  if (name === '(program)') return 'V8/native';
  const path = place(url);
  if (path === '') return 'V8/native';
  if (path.startsWith('node:')) return 'node internals';
  const dep = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
  if (dep !== null) return dep[1] ?? 'dependencies';
  return `ours: ${path.split('/')[0] ?? path}/`;
}

/**
 * Which samples count, in ms before the profile's end (the process's exit):
 * from `fromEndMs` back to `toEndMs` back. A node's start-up, rebuilding its
 * state, and its shutdown are not what a load measures.
 */
export interface ProfileWindow {
  readonly fromEndMs: number;
  readonly toEndMs: number;
}

/** The `limit` frames with the most self time in the profile at `path`, of the samples in `window` (all when absent). */
export function summarizeProfile(path: string, limit = 12, window: ProfileWindow = { fromEndMs: Number.POSITIVE_INFINITY, toEndMs: 0 }): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  const endUs = deltas.reduce((sum, d) => sum + d, 0);
  let atUs = 0;
  // Sample i's time is the delta that follows it (the next sample's timeDelta).
  for (let i = 0; i < samples.length; i++) {
    atUs += deltas[i] ?? 0;
    const beforeEndMs = (endUs - atUs) / 1000;
    if (beforeEndMs > window.fromEndMs || beforeEndMs < window.toEndMs) continue;
    const id = samples[i] as number;
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, deltas[i + 1] ?? 0));
  }
  const frames = new Map<string, number>();
  const groups = new Map<string, number>();
  let busy = 0;
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)?.callFrame;
    if (frame === undefined || frame.functionName === '(idle)') continue;
    busy += us;
    const where = place(frame.url);
    // Line numbers are of tsx's output, not of the source: the file names the place.
    const name = `${frame.functionName || '(anonymous)'}${where === '' ? '' : ` ${where}`}`;
    frames.set(name, (frames.get(name) ?? 0) + us);
    const group = groupOf(frame.url, frame.functionName);
    groups.set(group, (groups.get(group) ?? 0) + us);
  }
  const ranked = (m: Map<string, number>, n: number): ProfileFrame[] =>
    [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([name, us]) => ({ name, share: busy === 0 ? 0 : us / busy }));
  return { busyMs: busy / 1000, frames: ranked(frames, limit), groups: ranked(groups, 8) };
}

/** The biggest profile in `dir`: a node writes one per thread, and the main thread's is the busy one. */
export function mainProfile(dir: string): string | undefined {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(dir, f));
  return files.sort((a, b) => statSync(b).size - statSync(a).size)[0];
}

/** Lines for the bench's report. */
export function describeProfile(summary: ProfileSummary): string[] {
  const pct = (x: number): string => `${(x * 100).toFixed(1).padStart(5)}%`;
  return [
    `  top frames by self time (${summary.busyMs.toFixed(0)} ms busy):`,
    ...summary.frames.map((f) => `    ${pct(f.share)}  ${f.name}`),
    `  by where: ${summary.groups.map((g) => `${g.name} ${(g.share * 100).toFixed(0)}%`).join(', ')}`,
  ];
}
