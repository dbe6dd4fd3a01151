/**
 * Node log lines for humans. A node logs pino JSON lines; the cluster script
 * shows each as `n1 │ 12:00:01.123 INFO node listening url=… data=…`.
 * Pure functions: no clock, no I/O, no TTY detection (the caller says).
 */

/** pino's numeric levels. */
const LEVELS: Readonly<Record<number, string>> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/** Fields shown elsewhere on the line (or not at all): the prefix already says which node. */
const HIDDEN = new Set(['level', 'time', 'msg', 'node', 'pid', 'hostname']);

export interface FormatOptions {
  /** Show times in UTC instead of the local time zone (for tests). */
  readonly utc?: boolean;
}

/**
 * One log line as text for humans: a pino JSON line becomes
 * `HH:MM:SS.mmm LEVEL msg key=value …`; anything else is returned as it is.
 * Returns several lines when a field carries an error stack (the stack
 * follows, indented).
 */
export function formatLogLine(line: string, options: FormatOptions = {}): string[] {
  const record = parseRecord(line);
  if (record === undefined) return [line];
  const head: string[] = [];
  const time = formatTime(record.time, options.utc === true);
  if (time !== undefined) head.push(time);
  const level = formatLevel(record.level);
  if (level !== undefined) head.push(level);
  if (typeof record.msg === 'string' && record.msg !== '') head.push(record.msg);
  else if (record.msg !== undefined && record.msg !== null && record.msg !== '') head.push(formatValue(record.msg));
  const stacks: string[] = [];
  for (const [key, value] of Object.entries(record)) {
    if (HIDDEN.has(key) || value === undefined) continue;
    const stack = errorStack(value);
    if (stack !== undefined) {
      // A serialized error ({type, message, stack, ...}): its message here, other properties as key.prop=, the stack below.
      const error = value as Record<string, unknown>;
      head.push(`${key}=${formatValue(typeof error.message === 'string' ? error.message : '')}`);
      for (const [prop, v] of Object.entries(error)) {
        if (prop !== 'message' && prop !== 'stack' && prop !== 'type' && v !== undefined) head.push(`${key}.${prop}=${formatValue(v)}`);
      }
      stacks.push(...stack);
      continue;
    }
    head.push(`${key}=${formatValue(value)}`);
  }
  return [head.join(' '), ...stacks.map((s) => `    ${s.trim()}`)];
}

/** A value as it appears after `key=`: bare when that is unambiguous, JSON otherwise. */
export function formatValue(value: unknown): string {
  if (typeof value === 'string') return value !== '' && /^[^\s"'=\\\p{Cc}]+$/u.test(value) ? value : JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  if (typeof value === 'bigint') return value.toString();
  return JSON.stringify(value) ?? typeof value;
}

export interface PrefixOptions {
  /** Width the id is padded to, so the bars line up (the longest id of the cluster). */
  readonly width: number;
  /** Wrap the prefix in an ANSI colour (only for a terminal). */
  readonly color: boolean;
  /** Picks the colour: node 0, 1, 2, … get different ones. */
  readonly index: number;
}

/** ANSI foreground colours that read on dark and light terminals: cyan, magenta, yellow, green, blue, red, and their bright forms. */
const COLORS = [36, 35, 33, 32, 34, 31, 96, 95, 93, 92, 94, 91];

/** `n1 │ ` (padded to `width`), coloured when asked. */
export function linePrefix(id: string, options: PrefixOptions): string {
  const text = `${id.padEnd(options.width)} │ `;
  if (!options.color) return text;
  const color = COLORS[((options.index % COLORS.length) + COLORS.length) % COLORS.length] ?? 36;
  return `\u001b[${color}m${text}\u001b[0m`;
}

function parseRecord(line: string): Record<string, unknown> | undefined {
  const trimmed = line.trim();
  if (!trimmed.startsWith('{')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const record = value as Record<string, unknown>;
  // Some other JSON someone printed: show it untouched.
  if (!('level' in record) && !('msg' in record)) return undefined;
  return record;
}

function formatLevel(level: unknown): string | undefined {
  if (typeof level === 'number') return LEVELS[level] ?? `LEVEL${level}`;
  if (typeof level === 'string' && level !== '') return level.toUpperCase();
  return undefined;
}

/** pino's time: an ISO string (pino.stdTimeFunctions.isoTime) or epoch milliseconds (its default). */
function formatTime(time: unknown, utc: boolean): string | undefined {
  if (typeof time !== 'string' && typeof time !== 'number') return undefined;
  const date = new Date(time);
  if (Number.isNaN(date.getTime())) return typeof time === 'string' ? time : undefined;
  const [h, m, s, ms] = utc
    ? [date.getUTCHours(), date.getUTCMinutes(), date.getUTCSeconds(), date.getUTCMilliseconds()]
    : [date.getHours(), date.getMinutes(), date.getSeconds(), date.getMilliseconds()];
  return `${pad(h, 2)}:${pad(m, 2)}:${pad(s, 2)}.${pad(ms, 3)}`;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** The lines of a serialized error's stack, without the first (the message, already shown). */
function errorStack(value: unknown): string[] | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const stack = (value as { stack?: unknown }).stack;
  if (typeof stack !== 'string') return undefined;
  const lines = stack.split('\n').filter((l) => l.trim() !== '');
  // The message may span lines; the frames start at the first `at …`.
  const firstFrame = lines.findIndex((l) => /^\s+at /.test(l));
  return lines.slice(firstFrame === -1 ? 1 : firstFrame);
}
