import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The version in package.json, read at run time so it cannot drift from the
 * package: the nearest hitmesh package.json above this file, which runs from
 * scripts/cli/ under tsx and from dist/scripts/cli/ once built.
 */
export function packageVersion(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
      const pkg = typeof parsed === 'object' && parsed !== null ? (parsed as { name?: unknown; version?: unknown }) : {};
      if (pkg.name === 'hitmesh' && typeof pkg.version === 'string') return pkg.version;
    }
    if (dirname(dir) === dir) return 'unknown';
  }
}
