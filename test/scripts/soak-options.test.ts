import { describe, expect, it } from 'vitest';
import { DEFAULT_FAKETIME_LIBRARY } from '../../scripts/soak/faketime.ts';
import { FAULT_KINDS } from '../../scripts/soak/faults.ts';
import { parseDurationS, parseSoakArgs, UsageError, USAGE } from '../../scripts/soak/options.ts';

function settings(argv: string[]) {
  const options = parseSoakArgs(argv);
  if (options === 'help') throw new Error('expected options');
  return options;
}

describe('soak flags', () => {
  it('defaults: 10 minutes, 3 nodes, a calibrated rate, every fault', () => {
    const options = settings([]);
    expect(options.settings).toEqual({
      nodes: 3,
      durationS: 600,
      rate: undefined,
      keys: 20,
      seed: 1,
      faults: [...FAULT_KINDS],
      calibrateS: 3,
      convergeLimitS: 30,
      faketime: DEFAULT_FAKETIME_LIBRARY,
    });
    expect(options).toMatchObject({ out: 'reports', json: false, quiet: false, keepData: false });
    expect(parseSoakArgs(['--help'])).toBe('help');
    expect(parseSoakArgs(['-h'])).toBe('help');
  });

  it('takes the flags of the spec and the rest', () => {
    const options = settings(['--duration', '90s', '--nodes', '5', '--out', '/tmp/x', '--rate', '250', '--seed', '7', '--faults', 'kill,cut,kill', '--faketime', 'none', '--json', '--quiet', '--keep-data']);
    expect(options.settings).toMatchObject({ durationS: 90, nodes: 5, rate: 250, seed: 7, faults: ['kill', 'cut'], faketime: 'none' });
    expect(options).toMatchObject({ out: '/tmp/x', json: true, quiet: true, keepData: true });
  });

  it.each([
    ['90s', 90],
    ['10m', 600],
    ['600', 600],
    ['1.5h', 5_400],
    ['45000ms', 45],
    [' 40s ', 40],
  ])('duration %j is %i s', (text, seconds) => {
    expect(parseDurationS('--duration', text, 10, 86_400)).toBe(seconds);
  });

  it.each([
    [['--duration', '5s'], /--duration must be a duration from 10 s/],
    [['--duration', '10 minutes'], /--duration must be a duration/],
    [['--duration=-30s'], /--duration must be a duration/],
    [['--duration', '2d'], /--duration must be a duration/],
    [['--duration', ''], /--duration must be a duration/],
    [['--nodes', '1'], /--nodes must be a number from 2 to 15/],
    [['--nodes', '3.5'], /--nodes must be a whole number/],
    [['--rate', '0'], /--rate must be a number from 1/],
    [['--calibrate', 'long'], /--calibrate must be a number/],
    [['--faults', 'cut,meteor'], /unknown fault "meteor" in --faults/],
    [['--faults', ','], /--faults must name at least one/],
    [['split'], /Unexpected argument/],
    [['--colour'], /Unknown option/],
  ])('%j is refused: %s', (argv, message) => {
    expect(() => parseSoakArgs(argv)).toThrow(UsageError);
    expect(() => parseSoakArgs(argv)).toThrow(message);
  });

  it('the usage names every flag', () => {
    for (const flag of ['--duration', '--nodes', '--rate', '--calibrate', '--keys', '--seed', '--faults', '--converge-limit', '--faketime', '--out', '--json', '--quiet', '--keep-data', '--help']) {
      expect(USAGE).toContain(flag);
    }
    expect(USAGE).toContain('exit status: 0');
  });
});
