import { pino } from 'pino';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { formatLogLine, formatValue, linePrefix } from '../../scripts/lib/log-lines.ts';

const utc = { utc: true };

describe('formatLogLine', () => {
  it('turns a pino line into time, level, message and the other fields as k=v', () => {
    const line = JSON.stringify({
      level: 30,
      time: '2024-05-06T12:00:01.123Z',
      node: 'n1',
      url: 'http://127.0.0.1:7001',
      data: '/tmp/data/n1',
      msg: 'node listening',
    });
    expect(formatLogLine(line, utc)).toEqual(['12:00:01.123 INFO node listening url=http://127.0.0.1:7001 data=/tmp/data/n1']);
  });

  it('leaves out level, time, msg, node, pid and hostname as fields', () => {
    const line = JSON.stringify({ level: 40, time: 0, pid: 42, hostname: 'box', node: 'n2', msg: 'slow', ms: 12 });
    expect(formatLogLine(line, utc)).toEqual(['00:00:00.000 WARN slow ms=12']);
  });

  it('names every pino level, and an unknown one by number', () => {
    const levels = [10, 20, 30, 40, 50, 60, 35].map((level) => formatLogLine(JSON.stringify({ level, time: 0, msg: 'm' }), utc)[0]?.split(' ')[1]);
    expect(levels).toEqual(['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL', 'LEVEL35']);
  });

  it('takes string levels and epoch-millisecond times', () => {
    expect(formatLogLine(JSON.stringify({ level: 'warn', time: Date.UTC(2024, 0, 1, 23, 59, 59, 7), msg: 'x' }), utc)).toEqual(['23:59:59.007 WARN x']);
  });

  it('shows the local time unless told to use UTC', () => {
    const time = '2024-05-06T12:00:01.123Z';
    const d = new Date(time);
    const local = [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':') + '.123';
    expect(formatLogLine(JSON.stringify({ level: 30, time, msg: 'm' }))).toEqual([`${local} INFO m`]);
  });

  it('quotes values with spaces, quotes, = or nothing in them, and writes objects as JSON', () => {
    const line = JSON.stringify({
      level: 30,
      time: 0,
      msg: 'm',
      a: 'two words',
      b: '',
      c: 'x=y',
      d: { peer: 'n2', n: 1 },
      e: [1, 2],
      f: null,
      g: true,
      h: 'say "hi"',
    });
    expect(formatLogLine(line, utc)).toEqual(['00:00:00.000 INFO m a="two words" b="" c="x=y" d={"peer":"n2","n":1} e=[1,2] f=null g=true h="say \\"hi\\""']);
  });

  it('shows an error by its message and extra properties, its stack frames on the following lines', () => {
    const err = { type: 'Error', message: 'listen EADDRINUSE: address already in use', code: 'EADDRINUSE', stack: 'Error: listen EADDRINUSE: address already in use\n    at Server.listen (net.js:1:1)\n    at main (main.ts:2:3)' };
    expect(formatLogLine(JSON.stringify({ level: 50, time: 0, node: 'n1', err, msg: 'cannot start' }), utc)).toEqual([
      '00:00:00.000 ERROR cannot start err="listen EADDRINUSE: address already in use" err.code=EADDRINUSE',
      '    at Server.listen (net.js:1:1)',
      '    at main (main.ts:2:3)',
    ]);
  });

  it('formats what pino itself writes, as the node configures it', () => {
    const written: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        written.push(chunk.toString('utf8'));
        done();
      },
    });
    const logger = pino({ level: 'info', base: { node: 'n3' }, timestamp: pino.stdTimeFunctions.isoTime }, sink);
    logger.info({ peer: 'n1', lagMs: 27 }, 'peer up');
    const line = written.join('').trim();
    const [formatted] = formatLogLine(line, utc);
    expect(formatted).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO peer up peer=n1 lagMs=27$/);
  });

  it('returns anything that is not a pino record unchanged', () => {
    for (const line of ['plain text', '', '   indented', '{not json', '[1,2]', '42', '"str"', '{"some":"other json"}', 'Error: boom', '    at x (y.ts:1:1)']) {
      expect(formatLogLine(line, utc)).toEqual([line]);
    }
  });

  it('keeps a record with no message or time', () => {
    expect(formatLogLine(JSON.stringify({ level: 30, k: 1 }), utc)).toEqual(['INFO k=1']);
  });
});

describe('formatValue', () => {
  it('is bare for simple tokens and JSON otherwise', () => {
    expect(formatValue('abc')).toBe('abc');
    expect(formatValue('127.0.0.1:7001')).toBe('127.0.0.1:7001');
    expect(formatValue('tab\there')).toBe('"tab\\there"');
    expect(formatValue(1.5)).toBe('1.5');
    expect(formatValue(undefined)).toBe('undefined');
  });
});

describe('linePrefix', () => {
  it('pads the id to the width and adds the bar', () => {
    expect(linePrefix('n1', { width: 3, index: 0, color: false })).toBe('n1  │ ');
    expect(linePrefix('n10', { width: 3, index: 9, color: false })).toBe('n10 │ ');
  });

  it('colours only when asked, and differently per node', () => {
    const a = linePrefix('n1', { width: 2, index: 0, color: true });
    const b = linePrefix('n2', { width: 2, index: 1, color: true });
    const esc = String.fromCharCode(27);
    expect(a.startsWith(`${esc}[`)).toBe(true);
    expect(a.endsWith(`mn1 │ ${esc}[0m`)).toBe(true);
    expect(a.slice(0, 5)).not.toBe(b.slice(0, 5));
    expect(linePrefix('n1', { width: 2, index: 0, color: false })).not.toContain(esc);
  });
});
