import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { microTime } from '../../src/leader.js';
import { dueAt } from '../../src/scheduler.js';

describe('trigger timing', () => {
  it('waits for the debounce window after the first request', () => {
    assert.equal(dueAt(1000, undefined, 500, 30_000), 1500);
  });
  it('waits for the minimum interval after the last trigger, whichever is later', () => {
    assert.equal(dueAt(1000, 900, 500, 30_000), 30_900);
    assert.equal(dueAt(100_000, 900, 500, 30_000), 100_500);
    assert.equal(dueAt(1000, 900, 0, 0), 1000);
  });
});

describe('lease times', () => {
  it('are MicroTime: six fraction digits, UTC', () => {
    assert.equal(microTime(Date.UTC(2026, 10, 27, 23, 14, 3, 864)), '2026-11-27T23:14:03.864000Z');
  });
});
