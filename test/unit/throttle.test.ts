import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { TokenBucket } from '../../src/throttle.js';

describe('trigger throttle', () => {
  it('lets a burst through, then spaces reservations at the rate', () => {
    const bucket = new TokenBucket(50, 50, 0);
    const waits = Array.from({ length: 500 }, () => bucket.reserve(0));
    assert.equal(waits.filter((w) => w === 0).length, 50);
    assert.equal(waits[50], 20);
    assert.equal(waits.at(-1), 9000, '450 more at 50/s');
  });
  it('refills with time, never above the burst', () => {
    const bucket = new TokenBucket(10, 2, 0);
    bucket.reserve(0);
    bucket.reserve(0);
    assert.equal(bucket.reserve(0), 100);
    assert.equal(new TokenBucket(10, 2, 0).reserve(60_000), 0);
  });
  it('property: n reservations at one instant end no sooner than (n - burst) / rate', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 500 }), (rate, burst, n) => {
        const bucket = new TokenBucket(rate, burst, 0);
        let last = 0;
        for (let i = 0; i < n; i++) {
          const wait = bucket.reserve(0);
          assert.ok(wait >= last, 'slots are handed out in order');
          last = wait;
        }
        assert.ok(last >= Math.floor((Math.max(0, n - burst) / rate) * 1000) - 1);
      }),
    );
  });
});
