/** Progress on stderr: rewritten in place on a terminal, a line every few seconds otherwise. */
export function progressWriter(quiet: boolean): { update(line: string): void; line(text: string): void; done(): void } {
  const tty = process.stderr.isTTY;
  let shown = false;
  let last = 0;
  return {
    update(line) {
      if (quiet) return;
      if (tty) {
        const width = process.stderr.columns;
        process.stderr.write(`\r\x1b[K${line.length > width ? `${line.slice(0, width - 1)}…` : line}`);
        shown = true;
      } else if (Date.now() - last >= 5_000) {
        last = Date.now();
        process.stderr.write(`${line}\n`);
      }
    },
    line(text) {
      if (quiet) return;
      if (shown) process.stderr.write('\r\x1b[K');
      shown = false;
      process.stderr.write(`${text}\n`);
    },
    done() {
      if (shown) process.stderr.write('\n');
      shown = false;
    },
  };
}
