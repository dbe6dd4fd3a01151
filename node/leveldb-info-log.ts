import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Most problems reported from one open, and the longest line kept of each. */
const MAX_PROBLEMS = 20;
const MAX_LINE = 300;

/**
 * What LevelDB's recovery reported losing at the open that just finished.
 * LevelDB says so only in its own info log (`LOG` in the data directory,
 * started afresh at every open): a torn or corrupt record in its write-ahead
 * log is skipped with a line like "Log #12: dropping 4096 bytes; Corruption:
 * checksum mismatch", and everything after the damage in that block is gone.
 * Read right after the open, the file holds this open's recovery.
 */
export async function recoveryProblems(location: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(join(location, 'LOG'), 'utf8');
  } catch {
    return []; // no info log (an in-memory env, or one LevelDB did not write): nothing to report
  }
  const problems: string[] = [];
  for (const line of text.split('\n')) {
    if (!/dropping|corruption/i.test(line)) continue;
    // Drop LevelDB's timestamp and thread id prefix: "2026/12/02-00:12:34.567890 7f0a1b2c3d4e ".
    const message = line.replace(/^\S+ \S+ /, '').slice(0, MAX_LINE);
    problems.push(message);
    if (problems.length >= MAX_PROBLEMS) break;
  }
  return problems;
}
