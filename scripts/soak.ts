/**
 * `npm run soak -- [flags]` (SPEC §6): a proxied local cluster under steady
 * load for a long time with random faults one after another; writes the
 * report as JSON and HTML, prints a summary, and exits 0 when nothing was
 * lost or counted twice, every closed range converged and memory stayed
 * flat, 1 when a check failed, 2 on bad flags, 3 when it could not run.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { displayPath } from './lib/display-path.ts';
import { formatLogLine, linePrefix } from './lib/log-lines.ts';
import { parseSoakArgs, UsageError, USAGE, type SoakOptions } from './soak/options.ts';
import { progressWriter } from './soak/progress.ts';
import { renderSoakHtml } from './soak/report-html.ts';
import { renderSoakText } from './soak/report-text.ts';
import type { SoakReport } from './soak/report.ts';
import { runSoak } from './soak/run-soak.ts';

async function main(): Promise<number> {
  let options: SoakOptions | 'help';
  try {
    options = parseSoakArgs(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`soak: ${error.message}\n(npm run soak -- --help)\n`);
    return 2;
  }
  if (options === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  // Ctrl-C: the soak stops at its next wait and its cleanup stops the nodes and proxies; a second one leaves at once.
  const abort = new AbortController();
  const onSignal = (): void => {
    if (abort.signal.aborted) process.exit(130);
    abort.abort(new Error('interrupted'));
    process.stderr.write('\nsoak: interrupted; stopping the cluster (again to leave at once)\n');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const progress = progressWriter(options.quiet);
  let report: SoakReport;
  try {
    report = await runSoak(options.settings, {
      progress: (line) => progress.update(line),
      note: (line) => progress.line(line),
      nodeLine: (id, line) => {
        const prefix = linePrefix(id, { width: 3, color: false, index: 0 });
        for (const text of formatLogLine(line)) progress.line(prefix + text);
      },
      keepData: options.keepData,
      signal: abort.signal,
    });
  } catch (error) {
    progress.done();
    if (abort.signal.aborted) return 130;
    process.stderr.write(`soak: could not run: ${error instanceof Error ? error.message : String(error)}\n`);
    return 3;
  }
  progress.done();
  const paths = await writeReport(options.out, report);
  if (options.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else process.stdout.write(`${renderSoakText(report)}report: ${paths.json}\n        ${paths.html}\n`);
  return report.ok ? 0 : 1;
}

async function writeReport(dir: string, report: SoakReport): Promise<{ json: string; html: string }> {
  await mkdir(dir, { recursive: true });
  const stamp = report.startedAt.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const base = join(dir, `soak-${report.settings.nodes}n-${stamp}`);
  await writeFile(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(`${base}.html`, renderSoakHtml(report));
  return { json: displayPath(`${base}.json`), html: displayPath(`${base}.html`) };
}

process.exitCode = await main();
