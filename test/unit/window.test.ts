import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseWindows, type Window, WindowError, windowState } from '../../src/rollout/window.js';

const H = 3_600_000;
const M = 60_000;
const WHERE = '--trigger-windows';

/** The windows of (cron, timeZone, window) triples. */
function windows(...specs: [string, string, string][]): Window[] {
  return parseWindows(JSON.stringify(specs.map(([cron, timeZone, window]) => ({ cron, timeZone, window }))), WHERE);
}

const utc = (iso: string) => Date.parse(`${iso}Z`);

describe('parseWindows', () => {
  it('reads windows, with UTC by default, and a short text for each', () => {
    const parsed = parseWindows(
      '[{"cron": "0 8 * * 1-5", "timeZone": "Europe/Berlin", "window": "8h"}, {"cron": " 30  0 22 * * * ", "window": "1h30m"}]',
      WHERE,
    );
    assert.deepEqual(parsed, [
      { cron: '0 8 * * 1-5', timeZone: 'Europe/Berlin', windowMs: 8 * H, text: '0 8 * * 1-5 Europe/Berlin 8h' },
      { cron: '30 0 22 * * *', timeZone: 'UTC', windowMs: 90 * M, text: '30 0 22 * * * UTC 90m' },
    ]);
    // Go's time.LoadLocation("") is UTC as well.
    assert.equal(parseWindows('[{"cron": "0 8 * * MON-FRI", "timeZone": "", "window": "2h"}]', WHERE)[0]!.timeZone, 'UTC');
  });

  it('reads nothing from "" or [] (always open)', () => {
    assert.deepEqual(parseWindows('', WHERE), []);
    assert.deepEqual(parseWindows('  ', WHERE), []);
    assert.deepEqual(parseWindows('[]', WHERE), []);
  });

  it('throws a WindowError naming where, the window and the input, for every kind of bad input', () => {
    const cases: [string, string][] = [
      ['nope', 'not JSON'],
      ['[{"cron": "0 8 * * *", "window": "1h"}', 'not JSON'],
      ['{"cron": "0 8 * * *", "window": "1h"}', 'expected a JSON array of windows such as [{"cron": "0 8 * * 1-5", "timeZone": "Europe/Berlin", "window": "8h"}], got an object'],
      ['null', 'got null'],
      ['"0 8 * * *"', 'got string "0 8 * * *"'],
      ['[1]', 'trigger window 1: expected an object like'],
      ['[{"window": "1h"}]', 'trigger window 1: "cron" is required'],
      ['[{"cron": "0 8 * * *"}]', 'trigger window 1: "window" is required'],
      ['[{"cron": 8, "window": "1h"}]', 'trigger window 1: "cron" must be a string, got number 8'],
      ['[{"cron": "0 8 * * *", "timeZone": 1, "window": "1h"}]', 'trigger window 1: "timeZone" must be a string'],
      ['[{"cron": "0 8 * * *", "timezone": "UTC", "window": "1h"}]', 'trigger window 1: unknown field "timezone" (expected cron, timeZone, window)'],
      ['[{"cron": "0 25 * * *", "window": "1h"}]', 'trigger window 1: invalid cron "0 25 * * *": Invalid value for hour: 25'],
      ['[{"cron": "0 8 * * FOO", "window": "1h"}]', 'trigger window 1: invalid cron "0 8 * * FOO"'],
      ['[{"cron": "0 8 * *", "window": "1h"}]', 'trigger window 1: cron "0 8 * *" has 4 fields, expected 5'],
      ['[{"cron": "0 0 8 * * * 2030", "window": "1h"}]', 'trigger window 1: cron "0 0 8 * * * 2030" has 7 fields'],
      ['[{"cron": "@daily", "window": "1h"}]', 'trigger window 1: cron "@daily" has 1 field,'],
      ['[{"cron": "0 8 ? * MON", "window": "1h"}]', 'trigger window 1: cron "0 8 ? * MON": field 3 "?" is not standard cron'],
      ['[{"cron": "0 8 L * *", "window": "1h"}]', 'field 3 "L" is not standard cron'],
      ['[{"cron": "0 8 * * 5#2", "window": "1h"}]', 'field 5 "5#2" is not standard cron'],
      ['[{"cron": "0 0 30 2 *", "window": "1h"}]', 'trigger window 1: cron "0 0 30 2 *" never fires'],
      ['[{"cron": "", "window": "1h"}]', 'trigger window 1: cron "" has 1 field'],
      [
        '[{"cron": "0 8 * * *", "window": "1h"}, {"cron": "0 8 * * *", "timeZone": "Europe/Berln", "window": "1h"}]',
        'trigger window 2: unknown time zone "Europe/Berln"',
      ],
      ['[{"cron": "0 8 * * *", "window": "0s"}]', 'trigger window 1: window must be a positive duration, got "0s"'],
      ['[{"cron": "0 8 * * *", "window": "0"}]', 'window must be a positive duration, got "0"'],
      ['[{"cron": "0 8 * * *", "window": "-1h"}]', 'window must be a positive duration, got "-1h"'],
      ['[{"cron": "0 8 * * *", "window": "8 hours"}]', 'trigger window 1: invalid window "8 hours", expected a Go duration such as 30m or 8h'],
      ['[{"cron": "0 8 * * *", "window": ""}]', 'invalid window ""'],
      ['[{"cron": "0 8 * * *", "window": 3600}]', '"window" must be a string, got number 3600'],
    ];
    for (const [json, message] of cases) {
      assert.throws(
        () => parseWindows(json, WHERE),
        (err: unknown) => err instanceof WindowError && err.name === 'WindowError' && err.where === WHERE && err.message.startsWith(`${WHERE}: `) && err.message.includes(message),
        `${json} should throw a WindowError containing ${message}`,
      );
    }
  });

  it('gives the same Window objects for the same text, in a new array each time', () => {
    const json = '[{"cron": "0 8 * * 1-5", "timeZone": "Europe/Berlin", "window": "8h"}]';
    const first = parseWindows(json, WHERE);
    const second = parseWindows(json, WHERE);
    assert.notEqual(first, second);
    assert.equal(first[0], second[0]);
    assert.ok(Object.isFrozen(first[0]));
    // A bad text read before is reported with where it comes from now.
    assert.throws(() => parseWindows('[{"cron": "0 8 * * *"}]', 'a'), /^WindowError: a: trigger window 1: "window" is required$/);
    assert.throws(() => parseWindows('[{"cron": "0 8 * * *"}]', 'b'), /^WindowError: b: trigger window 1: "window" is required$/);
  });

  it('reports every problem at once and returns no partial list', () => {
    let caught: unknown;
    try {
      parseWindows('[{"cron": "0 8 * * *", "window": "1h"}, {"cron": "0 99 * * *", "timeZone": "Mars/Olympus", "window": "soon"}]', 'annotation x/trigger-windows');
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof WindowError);
    assert.deepEqual(caught.problems, [
      'trigger window 2: invalid cron "0 99 * * *": Invalid value for hour: 99',
      'trigger window 2: unknown time zone "Mars/Olympus"',
      'trigger window 2: invalid window "soon", expected a Go duration such as 30m or 8h',
    ]);
    assert.match(caught.message, /^annotation x\/trigger-windows: trigger window 2: /);
  });
});

describe('windowState', () => {
  it('is always open without windows', () => {
    assert.deepEqual(windowState([], 0), { open: true });
    assert.deepEqual(windowState([], utc('2025-06-01T12:00:00')), { open: true });
  });

  it('spans midnight: 22:00 for 4h', () => {
    const w = windows(['0 22 * * *', 'UTC', '4h']);
    assert.deepEqual(windowState(w, utc('2025-01-06T21:59:59.999')), { open: false, opensAt: utc('2025-01-06T22:00:00') });
    assert.deepEqual(windowState(w, utc('2025-01-06T22:00:00')), { open: true, until: utc('2025-01-07T02:00:00') });
    assert.deepEqual(windowState(w, utc('2025-01-07T00:30:00')), { open: true, until: utc('2025-01-07T02:00:00') });
    assert.deepEqual(windowState(w, utc('2025-01-07T01:59:59.999')), { open: true, until: utc('2025-01-07T02:00:00') });
    assert.deepEqual(windowState(w, utc('2025-01-07T02:00:00')), { open: false, opensAt: utc('2025-01-07T22:00:00') });
  });

  it('is open until the end of the union of overlapping and adjacent windows', () => {
    const overlapping = windows(['0 8 * * *', 'UTC', '4h'], ['0 10 * * *', 'UTC', '4h']);
    assert.deepEqual(windowState(overlapping, utc('2025-01-06T09:00:00')), { open: true, until: utc('2025-01-06T14:00:00') });
    assert.deepEqual(windowState(overlapping, utc('2025-01-06T13:00:00')), { open: true, until: utc('2025-01-06T14:00:00') });
    // 08:00-10:00, 10:00-11:00 (adjacent), 10:30-12:30 (overlapping the second only): one stretch.
    const chained = windows(['0 8 * * *', 'UTC', '2h'], ['0 10 * * *', 'UTC', '1h'], ['30 10 * * *', 'UTC', '2h']);
    assert.deepEqual(windowState(chained, utc('2025-01-06T08:00:00')), { open: true, until: utc('2025-01-06T12:30:00') });
    // One cron firing twice: 08:00-10:00 and 10:00-12:00.
    assert.deepEqual(windowState(windows(['0 8,10 * * *', 'UTC', '2h']), utc('2025-01-06T09:00:00')), { open: true, until: utc('2025-01-06T12:00:00') });
    // A gap is not bridged.
    const gap = windows(['0 8 * * *', 'UTC', '1h'], ['1 9 * * *', 'UTC', '1h']);
    assert.deepEqual(windowState(gap, utc('2025-01-06T08:30:00')), { open: true, until: utc('2025-01-06T09:00:00') });
    assert.deepEqual(windowState(gap, utc('2025-01-06T09:00:30')), { open: false, opensAt: utc('2025-01-06T09:01:00') });
  });

  it('gives an until that is later than now for windows that never close', () => {
    const state = windowState(windows(['*/10 * * * *', 'UTC', '1h']), utc('2025-01-06T09:03:00'));
    assert.ok(state.open && state.until !== undefined && state.until > utc('2025-01-06T10:00:00'));
  });

  it('closed over a weekend: opens Monday 08:00 Berlin', () => {
    const w = windows(['0 8 * * 1-5', 'Europe/Berlin', '8h']);
    // 2025-01-10 is a Friday; Berlin is UTC+1 in winter.
    assert.deepEqual(windowState(w, utc('2025-01-10T14:59:59')), { open: true, until: utc('2025-01-10T15:00:00') });
    const monday = { open: false, opensAt: utc('2025-01-13T07:00:00') };
    assert.deepEqual(windowState(w, utc('2025-01-10T15:00:00')), monday);
    assert.deepEqual(windowState(w, utc('2025-01-11T12:00:00')), monday);
    assert.deepEqual(windowState(w, utc('2025-01-13T06:59:59.999')), monday);
    assert.deepEqual(windowState(w, utc('2025-01-13T07:00:00')), { open: true, until: utc('2025-01-13T15:00:00') });
  });

  it('reads a seconds field', () => {
    const w = windows(['30 0 8 * * *', 'UTC', '10s']);
    assert.deepEqual(windowState(w, utc('2025-01-06T08:00:29.999')), { open: false, opensAt: utc('2025-01-06T08:00:30') });
    assert.deepEqual(windowState(w, utc('2025-01-06T08:00:30')), { open: true, until: utc('2025-01-06T08:00:40') });
    assert.deepEqual(windowState(w, utc('2025-01-06T08:00:39.999')), { open: true, until: utc('2025-01-06T08:00:40') });
    assert.deepEqual(windowState(w, utc('2025-01-06T08:00:40')), { open: false, opensAt: utc('2025-01-07T08:00:30') });
  });

  it('spring forward, Europe/Berlin: 02:30 does not exist on 2025-03-30, the window opens at 03:00 CEST', () => {
    const w = windows(['30 2 * * *', 'Europe/Berlin', '1h']);
    // The day before: 02:30 CET is 01:30 UTC.
    assert.deepEqual(windowState(w, utc('2025-03-29T01:45:00')), { open: true, until: utc('2025-03-29T02:30:00') });
    // The DST day: 03:00 CEST is 01:00 UTC, open an hour of elapsed time.
    assert.deepEqual(windowState(w, utc('2025-03-30T00:59:59')), { open: false, opensAt: utc('2025-03-30T01:00:00') });
    assert.deepEqual(windowState(w, utc('2025-03-30T01:00:00')), { open: true, until: utc('2025-03-30T02:00:00') });
    // The day after: 02:30 CEST is 00:30 UTC.
    assert.deepEqual(windowState(w, utc('2025-03-30T02:00:00')), { open: false, opensAt: utc('2025-03-31T00:30:00') });
  });

  it('spring forward, America/New_York: 02:30 does not exist on 2025-03-09, the window opens at 03:00 EDT', () => {
    const w = windows(['30 2 * * *', 'America/New_York', '1h']);
    assert.deepEqual(windowState(w, utc('2025-03-08T12:00:00')), { open: false, opensAt: utc('2025-03-09T07:00:00') });
    assert.deepEqual(windowState(w, utc('2025-03-09T07:30:00')), { open: true, until: utc('2025-03-09T08:00:00') });
    assert.deepEqual(windowState(w, utc('2025-03-09T08:00:00')), { open: false, opensAt: utc('2025-03-10T06:30:00') });
  });

  it('a window across a DST change lasts its duration of elapsed time, not of wall clock', () => {
    // Berlin falls back on 2025-10-26 03:00 CEST to 02:00 CET: 01:00 CEST + 3h is 03:00 CET, not 04:00.
    const berlin = windows(['0 1 * * *', 'Europe/Berlin', '3h']);
    assert.deepEqual(windowState(berlin, utc('2025-10-25T23:00:00')), { open: true, until: utc('2025-10-26T02:00:00') });
    assert.deepEqual(windowState(berlin, utc('2025-10-26T01:59:59.999')), { open: true, until: utc('2025-10-26T02:00:00') });
    assert.deepEqual(windowState(berlin, utc('2025-10-26T02:00:00')), { open: false, opensAt: utc('2025-10-27T00:00:00') });
    // New York falls back on 2025-11-02 02:00 EDT to 01:00 EST: 00:00 EDT + 4h is 03:00 EST.
    const newYork = windows(['0 0 * * *', 'America/New_York', '4h']);
    assert.deepEqual(windowState(newYork, utc('2025-11-02T04:00:00')), { open: true, until: utc('2025-11-02T08:00:00') });
    assert.deepEqual(windowState(newYork, utc('2025-11-02T08:00:00')), { open: false, opensAt: utc('2025-11-03T05:00:00') });
    // And springing forward: 00:00 CET + 4h on 2025-03-30 is 05:00 CEST.
    const spring = windows(['0 0 * * *', 'Europe/Berlin', '4h']);
    assert.deepEqual(windowState(spring, utc('2025-03-29T23:00:00')), { open: true, until: utc('2025-03-30T03:00:00') });
  });

  it('has no opening for a cron that never fires again', () => {
    // parseWindows refuses such a cron; a window built by hand still gets an answer.
    const never: Window = { cron: '0 0 30 2 *', timeZone: 'UTC', windowMs: H, text: '0 0 30 2 * UTC 1h' };
    assert.deepEqual(windowState([never], utc('2025-01-06T00:00:00')), { open: false, opensAt: undefined });
    const daily: Window = { cron: '0 8 * * *', timeZone: 'UTC', windowMs: H, text: '0 8 * * * UTC 1h' };
    assert.deepEqual(windowState([never, daily], utc('2025-01-06T00:00:00')), { open: false, opensAt: utc('2025-01-06T08:00:00') });
  });

  it('throws a WindowError for a bad window built by hand', () => {
    const bad: Window = { cron: '0 8 * *', timeZone: 'UTC', windowMs: H, text: '0 8 * * UTC 1h' };
    assert.throws(() => windowState([bad], 0), /^WindowError: 0 8 \* \* UTC 1h: cron "0 8 \* \*" has 4 fields/);
    const zone: Window = { cron: '0 8 * * *', timeZone: 'Europe/Berln', windowMs: H, text: '0 8 * * * Europe/Berln 1h' };
    assert.throws(() => windowState([zone], 0), /unknown time zone "Europe\/Berln"/);
  });

  // Windows that never cover all time, so a window that is open closes at `until`.
  const pool: [string, string, string][] = [
    ['0 8 * * 1-5', 'Europe/Berlin', '8h'],
    ['0 22 * * *', 'UTC', '4h'],
    ['30 2 * * *', 'America/New_York', '90m'],
    ['*/20 * * * *', 'UTC', '5m'],
    ['0 1 * * 0', 'Europe/Berlin', '3h'],
    ['0 12 * * *', 'Asia/Kolkata', '30m'],
    ['30 12 * * *', 'Asia/Kolkata', '1h'],
    ['15 10 1 * *', 'Australia/Sydney', '36h'],
    ['0 0 8 * * 6', 'UTC', '1s'],
  ];
  const anyWindows = fc.subarray(pool, { minLength: 1 });
  const anyTime = fc.integer({ min: utc('2024-01-01T00:00:00'), max: utc('2027-01-01T00:00:00') });

  it('open: now < until and it closes exactly at until; closed: it opens exactly at opensAt > now (property)', () => {
    fc.assert(
      fc.property(anyWindows, anyTime, (specs, now) => {
        const w = windows(...specs);
        const state = windowState(w, now);
        if (state.open) {
          assert.ok(state.until !== undefined && now < state.until);
          assert.deepEqual(windowState(w, state.until - 1), state);
          assert.equal(windowState(w, state.until).open, false);
        } else {
          assert.ok(state.opensAt !== undefined && state.opensAt > now);
          assert.deepEqual(windowState(w, state.opensAt - 1), state);
          assert.equal(windowState(w, state.opensAt).open, true);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('answers the same whatever it was asked before (property)', () => {
    const shared = windows(...pool);
    fc.assert(
      fc.property(fc.array(anyTime, { minLength: 1, maxLength: 20 }), (times) => {
        // Copies are new objects: compiled afresh, with nothing remembered.
        for (const now of times) assert.deepEqual(windowState(shared, now), windowState(shared.map((w) => ({ ...w })), now));
      }),
      { numRuns: 50 },
    );
  });
});
