import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatRFC3339Nano, monotonicNanoClock, triggerPatch } from '../../src/trigger.js';

describe('trigger', () => {
  it('formats RFC3339Nano like Go: UTC, up to 9 digits, trailing zeros dropped', () => {
    const base = BigInt(Date.UTC(2026, 10, 25, 14, 7, 50)) * 1_000_000n;
    assert.equal(formatRFC3339Nano(base), '2026-11-25T14:07:50Z');
    assert.equal(formatRFC3339Nano(base + 123_456_789n), '2026-11-25T14:07:50.123456789Z');
    assert.equal(formatRFC3339Nano(base + 120_000_000n), '2026-11-25T14:07:50.12Z');
    assert.equal(formatRFC3339Nano(base + 1n), '2026-11-25T14:07:50.000000001Z');
  });
  it('never returns the same instant twice, even when the clock stands still or steps back', () => {
    let now = 1_700_000_000_000;
    const clock = monotonicNanoClock(() => now);
    const a = clock();
    const b = clock();
    now -= 5;
    const c = clock();
    assert.ok(b > a && c > b);
  });
  it('reads the wall clock (Date.now), which requestedAt is compared with, not the drifting monotonic clock', (t) => {
    t.mock.method(Date, 'now', () => 1_700_000_000_000);
    assert.equal(monotonicNanoClock()(), 1_700_000_000_000n * 1_000_000n);
  });
  it('force sets requestedAt and forceAt to the same value; reconcile only requestedAt', () => {
    assert.deepEqual(triggerPatch('force', 't'), {
      metadata: { annotations: { 'reconcile.fluxcd.io/requestedAt': 't', 'reconcile.fluxcd.io/forceAt': 't' } },
    });
    assert.deepEqual(triggerPatch('reconcile', 't'), { metadata: { annotations: { 'reconcile.fluxcd.io/requestedAt': 't' } } });
  });
  it('reset adds resetAt with the same value, as flux reconcile hr --reset does', () => {
    assert.deepEqual(triggerPatch('force', 't', true).metadata.annotations['reconcile.fluxcd.io/resetAt'], 't');
    assert.equal(triggerPatch('force', 't').metadata.annotations['reconcile.fluxcd.io/resetAt'], undefined);
  });
});
