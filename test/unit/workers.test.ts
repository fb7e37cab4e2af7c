import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it, mock } from 'node:test';
import { NotLeaderError } from '../../src/errors.js';
import { ApiError } from '../../src/kube/api.js';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { WorkQueue } from '../../src/queue.js';
import { type WorkOutcome, WorkerPool } from '../../src/workers.js';

const settle = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
};

function pool(outcomes: Record<string, () => Promise<WorkOutcome>>, opts: { leader?: () => boolean; workers?: number } = {}) {
  const queue = new WorkQueue<string>();
  const addAfter = mock.method(queue, 'addAfter');
  const forget = mock.method(queue, 'forget');
  const lines: { msg: string; key?: string; status?: number; retryInMs?: number }[] = [];
  const log = createLogger('info', new Writable({ write: (c: Buffer, _e, cb) => (lines.push(JSON.parse(c.toString()) as { msg: string }), cb()) }));
  const metrics = createMetrics();
  let starts = 0;
  const reconciled: string[] = [];
  const workers = new WorkerPool({
    lanes: [
      {
        name: 'trigger',
        queue,
        reconcile: (key) => {
          reconciled.push(key);
          return outcomes[key]!();
        },
        workers: opts.workers ?? 1,
      },
    ],
    isLeader: opts.leader ?? (() => true),
    metrics,
    log,
    onStart: () => void starts++,
  });
  const reconciles = async (result: string): Promise<number> =>
    (await metrics.reconciles.get()).values.find((v) => v.labels.queue === 'trigger' && v.labels.result === result)?.value ?? 0;
  const retries = async (): Promise<number> => (await metrics.queueRetries.get()).values.find((v) => v.labels.queue === 'trigger')?.value ?? 0;
  return { workers, queue, addAfter, forget, lines, reconciles, retries, reconciled, starts: () => starts };
}

async function eventuallyTrue(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
}

describe('worker pool', () => {
  it('starts once, only after the caches synced, while leading and not stopping', async () => {
    let leading = false;
    const p = pool({ a: () => Promise.resolve('done') }, { leader: () => leading });
    p.queue.add('a');
    p.workers.start();
    assert.equal(p.workers.isSynced(), false);
    assert.equal(p.workers.markSynced(), true);
    assert.equal(p.workers.isSynced(), true);
    p.workers.start();
    await settle();
    assert.deepEqual(p.reconciled, [], 'not leading');
    leading = true;
    p.workers.start();
    p.workers.start();
    await settle();
    assert.equal(p.starts(), 1);
    assert.deepEqual(p.reconciled, ['a']);
    await p.workers.shutdown();
    assert.equal(p.workers.markSynced(), false, 'shutdown began');
  });
  it('done forgets the backoff; retry backs off; requeueAfterMs forgets it and looks again later', async () => {
    const p = pool({
      done: () => Promise.resolve('done'),
      retry: () => Promise.resolve('retry'),
      later: () => Promise.resolve({ requeueAfterMs: 60_000 }),
    });
    p.workers.markSynced();
    p.workers.start();
    for (const key of ['done', 'retry', 'later']) p.queue.add(key);
    await settle();
    assert.deepEqual(
      p.forget.mock.calls.map((c) => c.arguments[0]),
      ['done', 'later'],
    );
    assert.deepEqual(
      p.addAfter.mock.calls.map((c) => c.arguments),
      [
        ['retry', 100, false],
        ['later', 60_000],
      ],
    );
    assert.equal(p.queue.retries('retry'), 1);
    assert.equal(p.queue.retries('later'), 0);
    assert.equal(p.queue.delayed, 2);
    assert.equal(await p.reconciles('success'), 1);
    assert.equal(await p.reconciles('requeue'), 2);
    assert.equal(await p.retries(), 1, 'a requeue after a delay is not a retry');
    await p.workers.shutdown();
  });
  it('an error backs off no sooner than Retry-After and is logged; NotLeaderError once shutting down is dropped', async () => {
    let release!: () => void;
    const p = pool({
      busy: () => Promise.reject(new ApiError(429, 'TooManyRequests', 'slow down', 7)),
      lost: () => new Promise((_resolve, reject) => (release = () => reject(new NotLeaderError('not leading')))),
    });
    p.workers.markSynced();
    p.workers.start();
    p.queue.add('busy');
    p.queue.add('lost');
    await settle();
    const stopped = p.workers.shutdown(); // leadership lost: shutting down while 'lost' is in flight
    release();
    await stopped;
    assert.deepEqual(
      p.addAfter.mock.calls.map((c) => c.arguments),
      [['busy', 7_000, false]],
    );
    assert.deepEqual(
      p.lines.map(({ msg, key, status, retryInMs }) => ({ msg, key, status, retryInMs })),
      [{ msg: 'trigger reconcile failed; retrying', key: 'busy', status: 429, retryInMs: 7_000 }],
    );
    assert.equal(await p.reconciles('error'), 2);
    assert.equal(await p.retries(), 1);
  });
  it('a write refused as "not the leader" while still leading (a late lease renewal) is retried, never dropped', async () => {
    let refusals = 1;
    const p = pool({ flicker: () => (refusals-- > 0 ? Promise.reject(new NotLeaderError('not the leader: HelmRelease patch not sent')) : Promise.resolve('done')) });
    p.workers.markSynced();
    p.workers.start();
    p.queue.add('flicker');
    await eventuallyTrue(() => p.reconciled.length >= 2);
    assert.deepEqual(p.reconciled, ['flicker', 'flicker'], 'reconciled again after the refusal');
    assert.equal(await p.reconciles('success'), 1);
    await p.workers.shutdown();
  });
  it('shutdown drops waiting keys and waits for in-flight ones', async () => {
    let finish!: () => void;
    const p = pool({ slow: () => new Promise<WorkOutcome>((resolve) => (finish = () => resolve('done'))), next: () => Promise.resolve('done') });
    p.workers.markSynced();
    p.workers.start();
    p.queue.add('slow');
    p.queue.add('next');
    await settle();
    let stopped = false;
    const stopping = p.workers.shutdown().then(() => (stopped = true));
    await settle();
    assert.equal(stopped, false);
    finish();
    await stopping;
    assert.deepEqual(p.reconciled, ['slow']);
  });
});
