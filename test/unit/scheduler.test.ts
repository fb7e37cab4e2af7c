import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import type { CoreV1Event } from '@kubernetes/client-node';
import { EventRecorder } from '../../src/events.js';
import { FLUX_REQUESTED_AT } from '../../src/keys.js';
import type { AnnotationPatch } from '../../src/kube/client.js';
import { microTime } from '../../src/leader.js';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { WorkQueue } from '../../src/queue.js';
import { dueAt, TriggerScheduler, type TriggerRequest } from '../../src/scheduler.js';
import { monotonicNanoClock } from '../../src/trigger.js';
import type { ReleaseObject } from '../../src/sources/objects.js';
import { releaseObject } from './releases.js';

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

const source = { key: 'ConfigMap/ns/values', kind: 'ConfigMap' as const, namespace: 'ns', name: 'values', digest: `sha256:${'a'.repeat(64)}` };

/** A scheduler over one cached release (`release()` reads it), with no debounce and no throttle. */
function schedulerOver(release: () => ReleaseObject, patchRelease: (patch: AnnotationPatch) => Promise<void>, options: { minIntervalMs?: number; clock?: () => bigint } = {}) {
  const created: string[] = [];
  const settled: [readonly TriggerRequest[], boolean][] = [];
  const writer = {
    patchRelease: (_ns: string, _name: string, patch: AnnotationPatch) => patchRelease(patch),
    patchSource: () => Promise.resolve(),
    getSourceMetadata: () => Promise.resolve(undefined),
    createEvent: (_ns: string, event: CoreV1Event) => {
      created.push(event.reason ?? '');
      return Promise.resolve();
    },
    patchEvent: () => Promise.resolve(),
  };
  const log = createLogger('error', new Writable({ write: (_c, _e, cb) => cb() }));
  const queue = new WorkQueue<string>();
  const scheduler = new TriggerScheduler({
    debounceMs: 0,
    minIntervalMs: options.minIntervalMs ?? 0,
    triggerMode: 'force',
    dryRun: false,
    resetStalled: false,
    throttle: undefined,
    queue,
    getRelease: release,
    onSettled: (_key, requests, triggered) => settled.push([requests, triggered]),
    writer,
    events: new EventRecorder(writer, log, 'test'),
    metrics: createMetrics(),
    log,
    clock: options.clock ?? monotonicNanoClock(),
    rollout: { recordAnnotation: 'x/rollout', holdAnnotation: 'x/suspended-by', windowsClosed: () => false, maxInFlight: 0, inFlight: () => 0 },
  });
  return { scheduler, created, settled, queue };
}

describe('a trigger patch whose answer was lost', () => {
  /** `land` decides whether the API server applies a patch whose answer is then lost. */
  function setup(land: boolean) {
    let release = releaseObject('app');
    const patches: AnnotationPatch[] = [];
    let failNext = true;
    const t = schedulerOver(
      () => release,
      (patch) => {
        patches.push(patch);
        if (land || !failNext) release = { ...release, requestedAt: patch.metadata.annotations[FLUX_REQUESTED_AT] ?? undefined };
        if (failNext) {
          failNext = false;
          return Promise.reject(new Error('socket hang up'));
        }
        return Promise.resolve();
      },
    );
    t.scheduler.request('ns/app', { source, seenAt: undefined });
    return { ...t, patches };
  }

  it('landed: it is not sent again, and it settles as triggered', async () => {
    const t = setup(true);
    assert.equal(await t.scheduler.reconcile('ns/app'), 'done'); // the answer is lost: look again later
    assert.equal(t.settled.length, 0);
    assert.equal(await t.scheduler.reconcile('ns/app'), 'done');
    assert.equal(t.patches.length, 1, 'one patch');
    assert.deepEqual(t.settled.map(([requests, triggered]) => [requests.map((r) => r.source.digest), triggered]), [[[source.digest], true]]);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(t.created, ['Triggered']);
  });

  it('not landed: it is sent again', async () => {
    const t = setup(false);
    assert.equal(await t.scheduler.reconcile('ns/app'), 'done');
    assert.equal(await t.scheduler.reconcile('ns/app'), 'done');
    assert.equal(t.patches.length, 2, 'sent again');
    assert.deepEqual(t.settled.map(([, triggered]) => triggered), [true]);
  });
});

describe('the minimum interval', () => {
  /** A scheduler with a one-minute interval over one release: the patches it sends and the delays it asks for. */
  function interval(clock?: () => bigint) {
    const rig = { release: releaseObject('app'), sent: [] as string[], delays: [] as number[] };
    const { scheduler, queue } = schedulerOver(
      () => rig.release,
      (patch) => {
        rig.sent.push(patch.metadata.annotations[FLUX_REQUESTED_AT]!);
        return Promise.resolve();
      },
      { minIntervalMs: 60_000, ...(clock ? { clock } : {}) },
    );
    const addAfter = queue.addAfter.bind(queue);
    queue.addAfter = (key, delayMs, urgent) => {
      rig.delays.push(delayMs);
      addAfter(key, delayMs, urgent);
    };
    return { rig, scheduler, queue, sent: rig.sent, delays: rig.delays };
  }
  const next = { source: { ...source, digest: `sha256:${'c'.repeat(64)}` }, seenAt: undefined };

  it('a later request waits it out from the last trigger, before and after the cache shows that trigger', async () => {
    const { rig, scheduler, queue, sent, delays } = interval();
    scheduler.request('ns/app', { source, seenAt: undefined });
    assert.equal(await scheduler.reconcile('ns/app'), 'done');
    assert.equal(sent.length, 1);
    const waits = (d: number | undefined) => d !== undefined && d > 55_000 && d <= 60_000;
    // The cache does not show the trigger yet: this process remembers it.
    scheduler.request('ns/app', next);
    assert.ok(waits(delays.at(-1)), `waits about a minute: ${delays.at(-1)}`);
    // The cache shows it: read from the release.
    rig.release = { ...rig.release, requestedAt: sent[0] };
    assert.equal(await scheduler.reconcile('ns/app'), 'done');
    assert.equal(sent.length, 1, 'not sent before the interval');
    assert.ok(waits(delays.at(-1)), `still waits about a minute: ${delays.at(-1)}`);
    await queue.shutdown();
  });

  it('counts from the trigger\'s answer, not from its requestedAt, which is dated before the patch waits in the client\'s queue', async () => {
    // The patch waited 10 s in the client's queue: its requestedAt is 10 s older than its answer.
    const { rig, scheduler, queue, sent, delays } = interval(monotonicNanoClock(() => Date.now() - 10_000));
    scheduler.request('ns/app', { source, seenAt: undefined });
    assert.equal(await scheduler.reconcile('ns/app'), 'done');
    rig.release = { ...rig.release, requestedAt: sent[0] };
    scheduler.request('ns/app', next);
    assert.ok(delays.at(-1)! > 59_000, `waits the whole minute from the answer, not 50 s from requestedAt: ${delays.at(-1)}`);
    await queue.shutdown();
  });
});
