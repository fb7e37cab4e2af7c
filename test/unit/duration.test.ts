import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatDuration, parseGoDuration } from '../../src/duration.js';

describe('parseGoDuration', () => {
  it('reads Go duration syntax', () => {
    assert.equal(parseGoDuration('2m'), 120_000);
    assert.equal(parseGoDuration('1h30m'), 5_400_000);
    assert.equal(parseGoDuration('1.5s'), 1500);
    assert.equal(parseGoDuration('300ms'), 300);
    assert.equal(parseGoDuration('1500us'), 1.5);
    assert.equal(parseGoDuration('0'), 0);
    assert.equal(parseGoDuration('-1m'), -60_000);
  });
  it('rejects what Go rejects, naming the input', () => {
    for (const bad of ['', '2', 'm', '2 m', '2x', '1h-1m', 'abc', '1.2.3s']) {
      assert.throws(() => parseGoDuration(bad), (err: Error) => err instanceof RangeError && err.message.includes(`"${bad}"`), bad);
    }
  });
  it('formats round values back', () => {
    assert.equal(formatDuration(120_000), '2m');
    assert.equal(formatDuration(3_600_000), '1h');
    assert.equal(formatDuration(1500), '1500ms');
    assert.equal(formatDuration(2000), '2s');
  });
});
