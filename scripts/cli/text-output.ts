/** Output for people and for scripts: aligned columns, short times, one JSON document. */

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

export function printLines(lines: readonly string[]): void {
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** Rows padded into columns two spaces apart; columns listed in `rightAligned` (numbers) are padded on the left. */
export function columns(rows: readonly (readonly string[])[], rightAligned: readonly number[] = []): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) =>
    row
      .map((cell, i) => {
        const width = widths[i] ?? 0;
        if (i === row.length - 1 && !rightAligned.includes(i)) return cell;
        return rightAligned.includes(i) ? cell.padStart(width) : cell.padEnd(width);
      })
      .join('  '),
  );
}

/** 850ms, 12.3s, 4m 05s, 3h 12m, 2d 4h: how long ago, at a glance. */
export function formatSpan(ms: number): string {
  const abs = Math.abs(ms);
  const sign = ms < 0 ? '-' : '';
  if (abs < 1_000) return `${sign}${Math.round(abs)}ms`;
  if (abs < 60_000) return `${sign}${(abs / 1_000).toFixed(1)}s`;
  const s = Math.floor(abs / 1_000);
  if (s < 3_600) return `${sign}${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  if (s < 86_400) return `${sign}${Math.floor(s / 3_600)}h ${String(Math.floor((s % 3_600) / 60)).padStart(2, '0')}m`;
  return `${sign}${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3_600)}h`;
}

/** A signed offset, so ahead and behind read differently. */
export function formatOffset(ms: number): string {
  return ms > 0 ? `+${formatSpan(ms)}` : formatSpan(ms);
}

export function formatTime(epochMs: number): string {
  return new Date(epochMs).toISOString();
}

/** The count with thousands separated, for people. */
export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}
