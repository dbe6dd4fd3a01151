/**
 * `npm run partition -- <experiment> [flags]` (SPEC §6): runs a partition
 * experiment on a local cluster whose links pass through TCP fault proxies,
 * writes its report as JSON and HTML, prints a summary, and exits 1 if an
 * acknowledged hit was lost, one was counted twice, or the cluster did not
 * converge.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { displayPath } from './lib/display-path.ts';
import { formatLogLine, linePrefix } from './lib/log-lines.ts';
import { progressWriter } from './lib/progress-writer.ts';
import { parsePartitionArgs, UsageError, USAGE, type PartitionOptions } from './partition/options.ts';
import { renderReportHtml } from './partition/report-html.ts';
import { renderReportText } from './partition/report-text.ts';
import type { ExperimentReport } from './partition/report.ts';
import { runExperiment } from './partition/run-experiment.ts';

async function main(): Promise<number> {
  let options: PartitionOptions | 'help';
  try {
    options = parsePartitionArgs(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`partition: ${error.message}\n(npm run partition -- --help)\n`);
    return 2;
  }
  if (options === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  // Ctrl-C: the experiment stops at its next wait and its cleanup stops the nodes and proxies; a second one leaves at once.
  const abort = new AbortController();
  const onSignal = (): void => {
    if (abort.signal.aborted) process.exit(130);
    abort.abort(new Error('interrupted'));
    process.stderr.write('\npartition: interrupted; stopping the cluster (again to leave at once)\n');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const progress = progressWriter(options.quiet);
  let allOk = true;
  for (const experiment of options.experiments) {
    progress.line(`${experiment.name}: ${experiment.summary}, ${options.settings.nodes} nodes, ${options.settings.durationS} s`);
    let report: ExperimentReport;
    try {
      report = await runExperiment(experiment, options.settings, {
        progress: (line) => progress.update(line),
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
      process.stderr.write(`partition: ${experiment.name} could not run: ${error instanceof Error ? error.message : String(error)}\n`);
      return 3;
    }
    progress.done();
    const paths = await writeReport(options.out, report);
    if (options.json) process.stdout.write(`${JSON.stringify(report)}\n`);
    else process.stdout.write(`${renderReportText(report)}report: ${paths.json}\n        ${paths.html}\n\n`);
    allOk &&= report.ok;
  }
  return allOk ? 0 : 1;
}

async function writeReport(dir: string, report: ExperimentReport): Promise<{ json: string; html: string }> {
  await mkdir(dir, { recursive: true });
  const stamp = report.startedAt.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const base = join(dir, `${report.experiment}-${report.settings.nodes}n-${stamp}`);
  await writeFile(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(`${base}.html`, renderReportHtml(report));
  return { json: displayPath(`${base}.json`), html: displayPath(`${base}.html`) };
}


process.exitCode = await main();
