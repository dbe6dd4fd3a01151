/**
 * --max-connections (SPEC section 2): the flag and its variable, and how the
 * open-files limit bounds it (README, Limits). The same on a real process
 * under prlimit is in test/process/connection-limits.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { CliError, helpText, parseCli } from '../../node/cli.ts';
import { connectionLimit, DEFAULTS, FD_RESERVE, MIN_CONNECTIONS } from '../../node/config.ts';

const config = (argv: string[], env: NodeJS.ProcessEnv = {}) => {
  const parsed = parseCli(['--id', 'n1', ...argv], env);
  if (parsed.kind !== 'run') throw new Error('expected a run config');
  return parsed.config;
};

describe('--max-connections', () => {
  it('defaults to 10000, takes the flag or HITMESH_MAX_CONNECTIONS (the flag wins), and is in --help', () => {
    expect(config([]).maxConnections).toBe(10_000);
    expect(DEFAULTS.maxConnections).toBe(10_000);
    expect(config(['--max-connections', '250']).maxConnections).toBe(250);
    expect(config([], { HITMESH_MAX_CONNECTIONS: '40' }).maxConnections).toBe(40);
    expect(config(['--max-connections', '7'], { HITMESH_MAX_CONNECTIONS: '40' }).maxConnections).toBe(7);
    expect(config([], { HITMESH_MAX_CONNECTIONS: '' }).maxConnections).toBe(10_000); // empty means unset
    expect(() => config([], { HITMESH_MAX_CONNECTIONS: 'lots' })).toThrow(/--max-connections must be an integer/);
    expect(helpText()).toMatch(/--max-connections N .*\[HITMESH_MAX_CONNECTIONS\] \(default: 10000\)/);
  });

  it.each(['0', '-1', '1.5', 'many', '1e3', '1000001', ''])('refuses %j with a bad-flag error', (value) => {
    const attempt = (): unknown => config([`--max-connections=${value}`]);
    expect(attempt).toThrow(CliError);
    expect(attempt).toThrow(/--max-connections must be an integer in 1\.\.1000000/);
  });
});

describe('the open-files limit', () => {
  it('leaves --max-connections alone when the limit is unknown or has room for it and the reserve', () => {
    expect(connectionLimit(10_000, undefined)).toEqual({ asked: 10_000, effective: 10_000, openFiles: undefined, reserve: FD_RESERVE });
    expect(connectionLimit(10_000, 10_000 + FD_RESERVE).effective).toBe(10_000);
    expect(connectionLimit(10, 10 + FD_RESERVE).effective).toBe(10);
  });

  it('lowers it to the limit minus the reserve', () => {
    expect(connectionLimit(10_000, 1_024)).toEqual({ asked: 10_000, effective: 1_024 - FD_RESERVE, openFiles: 1_024, reserve: FD_RESERVE });
    expect(connectionLimit(10_000, FD_RESERVE + MIN_CONNECTIONS).effective).toBe(MIN_CONNECTIONS);
  });

  it('refuses a limit that leaves fewer than the minimum, unless fewer were asked for', () => {
    expect(() => connectionLimit(10_000, FD_RESERVE + MIN_CONNECTIONS - 1)).toThrow(/open files limit \(143\).*ulimit -n/);
    expect(() => connectionLimit(10_000, 20)).toThrow(/room for 0 connections/);
    expect(connectionLimit(4, FD_RESERVE + 4).effective).toBe(4);
    expect(() => connectionLimit(4, FD_RESERVE + 3)).toThrow(/open files limit/);
  });
});
