/**
 * `npm start` / `npm run cluster -- [flags]`: a local hitmesh cluster in the
 * foreground. Starts n1…nN on consecutive ports of 127.0.0.1, waits until they
 * are ready and see each other, prints where they are, streams their logs and
 * stops them all on Ctrl-C or SIGTERM.
 *
 * Signals through npm: npm runs a script as `sh -c "<script> <args>"` and
 * forwards SIGINT and SIGTERM to that shell only. dash (/bin/sh here) does not
 * exec the last command of `sh -c`: it forks, waits, and dies of the forwarded
 * SIGTERM itself, leaving this process and the nodes running, orphaned. So the
 * package.json scripts say `exec node --import tsx scripts/cluster.ts`: the
 * shell becomes this process, and what npm forwards reaches it. The nodes are
 * our children in our process group: Ctrl-C in a terminal signals them too,
 * and they take that as the same request to stop.
 */
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { displayPath } from './lib/display-path.ts';
import { createClusterNodes, startNodes, stopNodes, waitForMesh, wipeNodeDirs, ClusterStartError } from './lib/local-cluster.ts';
import type { LocalNode } from './lib/local-node.ts';
import { formatLogLine, linePrefix } from './lib/log-lines.ts';

const DEFAULT_NODES = 3;
const MAX_NODES = 100;
const DEFAULT_BASE_PORT = 7001;
const DEFAULT_DATA = './data';
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
/** How long to wait for every node to see every other as up before going on with a warning. */
const MESH_TIMEOUT_MS = 15_000;
/** How long a node may take to stop after SIGTERM before it is killed. */
const STOP_GRACE_MS = 10_000;

const HELP = `hitmesh local cluster: N nodes on 127.0.0.1 in the foreground; Ctrl-C stops them all

usage: npm start                      (3 nodes on ports 7001-7003, data in ./data)
       npm run cluster -- [flags]

  --nodes N          how many nodes, n1 … nN, 1-${MAX_NODES} (default: ${DEFAULT_NODES})
  --base-port PORT   port of n1; nK listens on PORT+K-1 (default: ${DEFAULT_BASE_PORT})
  --data DIR         parent of the node dirs DIR/n1 … DIR/nN (default: ${DEFAULT_DATA})
  --fresh            delete the node dirs (DIR/n<number>) first: start with no counts
  --secret TEXT      cluster secret for the gossip handshake; also HITMESH_SECRET
                     (given to the nodes in their environment, not on their command line)
  --log-level LEVEL  ${LOG_LEVELS.join(', ')} (default: info)
  --help             print this and exit

Each node is seeded with all the others. A second start on the same --data keeps every count.`;

class UsageError extends Error {}

interface ClusterFlags {
  readonly nodes: number;
  readonly basePort: number;
  readonly data: string;
  readonly fresh: boolean;
  readonly secret: string | undefined;
  readonly logLevel: string;
}

function parseFlags(argv: readonly string[], env: NodeJS.ProcessEnv): ClusterFlags | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        nodes: { type: 'string' },
        'base-port': { type: 'string' },
        data: { type: 'string' },
        fresh: { type: 'boolean' },
        secret: { type: 'string' },
        'log-level': { type: 'string' },
        help: { type: 'boolean' },
      },
    }));
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  if (values.help === true) return 'help';
  const nodes = integer('--nodes', values.nodes, DEFAULT_NODES, 1, MAX_NODES);
  const basePort = integer('--base-port', values['base-port'], DEFAULT_BASE_PORT, 1, 65_535);
  if (basePort + nodes - 1 > 65_535) throw new UsageError(`--base-port ${basePort} with --nodes ${nodes} needs ports up to ${basePort + nodes - 1}, past 65535`);
  const data = values.data ?? DEFAULT_DATA;
  if (data === '') throw new UsageError('--data must not be empty');
  const secret = values.secret ?? (env.HITMESH_SECRET === '' ? undefined : env.HITMESH_SECRET);
  if (secret === '') throw new UsageError('--secret must not be empty');
  const logLevel = values['log-level'] ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}; got ${JSON.stringify(logLevel)}`);
  return { nodes, basePort, data, fresh: values.fresh === true, secret, logLevel };
}

function integer(flag: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  if (!/^[0-9]{1,6}$/.test(raw) || Number(raw) < min || Number(raw) > max) throw new UsageError(`${flag} must be an integer in ${min}..${max}, got ${JSON.stringify(raw)}`);
  return Number(raw);
}

const out = (text: string): void => void process.stdout.write(`${text}\n`);
const err = (text: string): void => void process.stderr.write(`${text}\n`);

function describeExit(status: { code: number | null; signal: NodeJS.Signals | null }): string {
  return status.signal !== null ? `signal ${status.signal}` : `code ${String(status.code)}`;
}

function table(nodes: readonly LocalNode[]): string {
  const rows = [['id', 'url', 'data', 'pid'], ...nodes.map((n) => [n.id, n.url, displayPath(n.options.dataDir), String(n.pid ?? '-')])];
  const widths = [0, 1, 2].map((c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => `  ${r.map((cell, c) => (c < 3 ? cell.padEnd(widths[c] ?? 0) : cell)).join('   ')}`).join('\n');
}

async function main(): Promise<number> {
  let flags;
  try {
    flags = parseFlags(process.argv.slice(2), process.env);
  } catch (error) {
    if (error instanceof UsageError) {
      err(`cluster: ${error.message} (see --help)`);
      return 2;
    }
    throw error;
  }
  if (flags === 'help') {
    out(HELP);
    return 0;
  }

  // A reader that goes away (`npm start | head`) must not crash us and orphan the nodes.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);

  const width = Math.max(...Array.from({ length: flags.nodes }, (_, i) => `n${i + 1}`.length));
  const indexOf = (id: string): number => Number(id.slice(1)) - 1;
  const nodes = createClusterNodes({
    nodes: flags.nodes,
    basePort: flags.basePort,
    dataDir: flags.data,
    logLevel: flags.logLevel,
    ...(flags.secret !== undefined ? { secret: flags.secret } : {}),
    onLine: (id, line, stream) => {
      const target = stream === 'stdout' ? process.stdout : process.stderr;
      const prefix = linePrefix(id, { width, index: indexOf(id), color: target.isTTY === true });
      target.write(`${formatLogLine(line).map((l) => prefix + l).join('\n')}\n`);
    },
  });

  // Last resort: however this process ends, the nodes do not outlive it.
  process.once('exit', () => {
    for (const node of nodes) {
      const pid = node.pid;
      if (pid === undefined) continue;
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
  });

  const abort = new AbortController();
  /** The start-up, until it has settled. */
  let startup: Promise<unknown> | undefined;
  let stopping = false;
  let finish: (code: number) => void = () => undefined;
  const finished = new Promise<number>((resolveFinished) => (finish = resolveFinished));
  /** The one shutdown: later calls (repeated signals, a node dying meanwhile) change nothing. */
  const stop = (reason: string, code: number): void => {
    if (stopping) return;
    stopping = true;
    abort.abort();
    const running = nodes.filter((n) => n.running);
    const what = running.length === nodes.length ? (nodes.length === 1 ? 'the node' : `all ${nodes.length} nodes`) : `the ${running.length} node${running.length === 1 ? '' : 's'} still running`;
    out(`cluster: ${reason}; ${running.length === 0 && startup === undefined ? 'exiting' : `stopping ${what}…`}`);
    void (async () => {
      // A start in progress undoes itself on the abort; wait for it so no node comes up after the stop.
      await startup?.catch(() => undefined);
      const statuses = await stopNodes(nodes, STOP_GRACE_MS);
      statuses.forEach((status, i) => {
        const node = nodes[i];
        if (node === undefined || !running.includes(node)) return; // it had exited before, and was reported then
        if (status.signal === 'SIGKILL') err(`cluster: ${node.id} did not stop within ${STOP_GRACE_MS / 1000} s and was killed`);
        else if (status.code !== null && status.code !== 0) err(`cluster: ${node.id} exited with ${describeExit(status)} while stopping`);
      });
      out('cluster: stopped');
      finish(code);
    })();
  };
  // Ctrl-C reaches npm, us and the nodes at once, and npm relays it again: repeats are the same request.
  const onSignal = (signal: NodeJS.Signals): void => stop(`${signal} received`, 0);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);

  const dataDir = resolve(flags.data);
  const run = async (): Promise<void> => {
    await mkdir(dataDir, { recursive: true });
    if (flags.fresh) {
      const wiped = await wipeNodeDirs(dataDir);
      out(`cluster: --fresh: removed ${wiped.length === 0 ? 'nothing' : wiped.map(displayPath).join(', ')}`);
    }
    if (stopping) return;
    out(`cluster: starting ${flags.nodes} node${flags.nodes === 1 ? '' : 's'} on 127.0.0.1:${flags.basePort}-${flags.basePort + flags.nodes - 1}, data in ${displayPath(dataDir)}`);
    try {
      await startNodes(nodes, { signal: abort.signal, stopGraceMs: STOP_GRACE_MS });
    } catch (error) {
      if (stopping) return;
      stopping = true;
      const message = error instanceof ClusterStartError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error);
      err(`cluster: cannot start the cluster (the nodes that did start were stopped again):\n${message}`);
      finish(1);
      return;
    }
    if (stopping) return;
    const pids = new Map(nodes.map((n) => [n, n.pid]));
    for (const node of nodes) {
      void node.exited().then((status) => {
        if (stopping) return;
        const left = nodes.filter((n) => n.running).length;
        err(`cluster: ${node.id} (pid ${String(pids.get(node))}) exited on its own with ${describeExit(status)}; ${left} of ${nodes.length} nodes still running`);
        if (left === 0) stop('no node is left', 1);
      });
    }

    const mesh = await waitForMesh(nodes, MESH_TIMEOUT_MS, { signal: abort.signal });
    if (stopping) return;
    if (!mesh.ok) err(`cluster: warning: after ${MESH_TIMEOUT_MS / 1000} s not every node sees the others as up (${mesh.missing.join('; ')}); going on`);
    const first = nodes[0];
    const second = nodes[1] ?? first;
    const lines = [
      '',
      `hitmesh: ${nodes.length} node${nodes.length === 1 ? '' : 's'} ready${nodes.length > 1 && mesh.ok ? ' and connected' : ''}`,
      '',
      table(nodes),
      '',
      'Try it:',
      `  curl -X POST ${first?.url ?? ''}/hit/home`,
      `  curl '${second?.url ?? ''}/count/home?window=all'${second !== first ? `    # the count, read on ${second?.id ?? ''}` : ''}`,
      '',
      'Ctrl-C stops every node.',
      '',
    ];
    out(lines.join('\n'));
  };
  startup = run()
    .catch((error: unknown) => {
      // Not a node failing (that is handled above): e.g. the data dir cannot be created.
      if (stopping) return;
      stopping = true;
      err(`cluster: ${error instanceof Error ? error.message : String(error)}`);
      void stopNodes(nodes, STOP_GRACE_MS).then(() => finish(1));
    })
    .finally(() => (startup = undefined));
  return finished;
}

// process.exit: nothing left here (an idle fetch connection, a timer) may keep a stopped cluster's terminal waiting.
process.exit(await main());
