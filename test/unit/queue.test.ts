import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { backoffDelay, WorkQueue } from '../../src/queue.js';

describe('WorkQueue', () => {
  it('deduplicates waiting keys and keeps order', async () => {
    const q = new WorkQueue<string>();
    for (const k of ['a', 'b', 'a', 'c', 'b']) q.add(k);
    assert.equal(q.depth, 3);
    assert.deepEqual([await q.get(), await q.get(), await q.get()], ['a', 'b', 'c']);
  });
  it('never hands a key to two workers; a key added while processed comes back after done', async () => {
    const q = new WorkQueue<string>();
    q.add('a');
    const first = await q.get();
    q.add('a');
    q.add('a');
    assert.equal(q.depth, 0, 'held back while processing');
    let second: string | undefined;
    void q.get().then((k) => (second = k));
    await Promise.resolve();
    assert.equal(second, undefined);
    q.done(first!);
    await Promise.resolve();
    assert.equal(second, 'a');
  });
  it('hands urgent keys out first; an urgent add moves a waiting key to the front lane, once', async () => {
    const q = new WorkQueue<string>();
    for (const k of ['a', 'b', 'c', 'd']) q.add(k);
    q.add('x', true);
    q.add('c', true);
    q.add('c', true);
    q.add('a');
    assert.equal(q.depth, 5);
    assert.deepEqual(await Promise.all([q.get(), q.get(), q.get(), q.get(), q.get()]), ['x', 'c', 'a', 'b', 'd']);
    assert.equal(q.depth, 0);
  });
  it("a delay past a timer's limit (a window months away) waits out the limit instead of firing at once", () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const q = new WorkQueue<string>();
      q.addAfter('held', 90 * 24 * 3600_000);
      mock.timers.tick(1000);
      assert.equal(q.depth, 0, 'not after a millisecond, as a bare setTimeout would');
      mock.timers.tick(2 ** 31 - 1);
      assert.equal(q.depth, 1, 'looked at after the limit, to ask again');
    } finally {
      mock.timers.reset();
    }
  });
  it('a key added urgent while processed, or whose urgent turn is retried, comes back urgent', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    try {
      const q = new WorkQueue<string>({ baseDelayMs: 100, maxDelayMs: 1000 });
      q.add('u', true);
      q.add('n');
      const u = await q.get();
      assert.equal(u, 'u');
      q.addRateLimited('u'); // its trigger failed
      q.done('u');
      q.add('m');
      mock.timers.tick(100);
      assert.equal(await q.get(), 'u', 'the retry is still ahead of the others');
      q.add('u', true);
      q.done('u');
      assert.deepEqual([await q.get(), await q.get(), await q.get()], ['u', 'n', 'm']);
      q.done('u');
      for (const k of ['p', 'u', 'q']) q.add(k);
      assert.deepEqual([await q.get(), await q.get(), await q.get()], ['p', 'u', 'q'], 'once done, a plain add of it is plain');
    } finally {
      mock.timers.reset();
    }
  });
  it('backs off exponentially per key up to the cap, and forget resets it', () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    try {
      const q = new WorkQueue<string>({ baseDelayMs: 100, maxDelayMs: 1000 });
      assert.deepEqual([q.addRateLimited('a'), q.addRateLimited('a'), q.addRateLimited('a'), q.addRateLimited('a'), q.addRateLimited('a')], [100, 200, 400, 800, 1000]);
      assert.equal(q.addRateLimited('b'), 100, 'per key');
      assert.equal(q.retries('a'), 5);
      assert.equal(q.depth, 0);
      mock.timers.tick(100);
      assert.equal(q.depth, 2, 'the earliest pending delay wins');
      q.forget('a');
      assert.equal(q.retries('a'), 0);
    } finally {
      mock.timers.reset();
    }
    assert.equal(backoffDelay(1000, { baseDelayMs: 5, maxDelayMs: 60_000 }), 60_000);
  });
  it('shutdown releases waiting workers and waits for in-flight keys', async () => {
    const q = new WorkQueue<string>();
    q.add('a');
    const key = await q.get();
    const waiting = q.get();
    let stopped = false;
    const shutdown = q.shutdown().then(() => (stopped = true));
    assert.equal(await waiting, undefined);
    await Promise.resolve();
    assert.equal(stopped, false);
    q.done(key!);
    await shutdown;
    assert.equal(stopped, true);
    q.add('b');
    assert.equal(await q.get(), undefined);
  });
});
