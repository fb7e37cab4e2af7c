import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { classifyAnswer, type FluxEvent, FluxEventPoster, fluxMetadataKey, toFluxEvent } from '../../src/flux-events.js';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { type Webhook, webhook } from '../harness/webhook.js';

const release = { apiVersion: 'helm.toolkit.fluxcd.io/v2', kind: 'HelmRelease', namespace: 'apps', name: 'podinfo', uid: 'u1' };
const configMap = { apiVersion: 'v1', kind: 'ConfigMap', namespace: 'apps', name: 'values', uid: 'u2' };
const who = { keyDomain: 'uburro.github.com', controller: 'helmrelease-trigger-operator', instance: 'pod-1', now: new Date('2026-11-28T10:00:00.123Z') };

describe('Flux event payload', () => {
  it("is Flux's Event: severity from the type, seconds-precision timestamp, reporting controller and instance", () => {
    const event = toFluxEvent(release, 'Normal', 'Triggered', 'ConfigMap apps/values changed', { source: 'ConfigMap/apps/values', digest: 'sha256:ab' }, who);
    assert.deepEqual(event, {
      involvedObject: release,
      severity: 'info',
      timestamp: '2026-11-28T10:00:00Z',
      message: 'ConfigMap apps/values changed',
      reason: 'Triggered',
      metadata: { 'helm.toolkit.fluxcd.io/uburro.github.com/source': 'ConfigMap/apps/values', 'helm.toolkit.fluxcd.io/uburro.github.com/digest': 'sha256:ab' },
      reportingController: 'helmrelease-trigger-operator',
      reportingInstance: 'pod-1',
    });
    const warning = toFluxEvent(configMap, 'Warning', 'TargetNotFound', 'missing', {}, who);
    assert.equal(warning.severity, 'error');
    assert.equal(warning.metadata, undefined);
  });
  it("prefixes metadata keys with the involved object's group, the only keys notification-controller keeps", () => {
    assert.equal(fluxMetadataKey('helm.toolkit.fluxcd.io/v2', 'example.org', 'source'), 'helm.toolkit.fluxcd.io/example.org/source');
    assert.equal(fluxMetadataKey('v1', 'example.org', 'source'), '/example.org/source');
  });
  it("classifies answers with Flux's retry policy", () => {
    assert.equal(classifyAnswer(202), 'success');
    assert.equal(classifyAnswer(429), 'duplicate');
    assert.equal(classifyAnswer(400), 'failed');
    assert.equal(classifyAnswer(503), 'retry');
    assert.equal(classifyAnswer(undefined), 'retry');
  });
});

function poster(address: string, extra: { maxPending?: number; concurrency?: number } = {}) {
  const lines: { msg: string; err?: string }[] = [];
  const log = createLogger('warn', new Writable({ write: (c: Buffer, _e, cb) => (lines.push(JSON.parse(c.toString()) as { msg: string }), cb()) }));
  const metrics = createMetrics();
  const p = new FluxEventPoster({ address, log, metrics, backoffMs: 1, maxBackoffMs: 4, ...extra });
  const count = async (result: string): Promise<number> =>
    (await metrics.fluxEventPosts.get()).values.find((v) => v.labels.result === result)?.value ?? 0;
  return { p, lines, count };
}

const event = (n: number): FluxEvent => toFluxEvent(release, 'Normal', 'Triggered', `change ${n}`, {}, who);

describe('Flux event delivery', () => {
  const hooks: Webhook<FluxEvent>[] = [];
  const endpoint = async (statuses: number[]): Promise<Webhook<FluxEvent>> => {
    const hook = await webhook<FluxEvent>(statuses);
    hooks.push(hook);
    return hook;
  };
  after(() => Promise.all(hooks.map((h) => h.close())));

  it('retries 5xx until accepted', async () => {
    const ep = await endpoint([503, 500, 202]);
    const { p, count } = poster(ep.url);
    p.post(event(1));
    await p.drained();
    assert.equal(ep.bodies.length, 3);
    assert.equal(await count('success'), 1);
    assert.equal(await count('failed'), 0);
    await p.stop(0);
  });
  it('does not retry a 429 (a refused repeat) nor a 4xx, and counts a 4xx as failed with a warning', async () => {
    const dup = await endpoint([429]);
    const bad = await endpoint([400]);
    const a = poster(dup.url);
    a.p.post(event(1));
    await a.p.drained();
    assert.equal(dup.bodies.length, 1);
    assert.equal(await a.count('duplicate'), 1);
    const b = poster(bad.url);
    b.p.post(event(1));
    await b.p.drained();
    assert.equal(bad.bodies.length, 1);
    assert.equal(await b.count('failed'), 1);
    assert.match(b.lines[0]!.msg, /cannot post Flux event/);
    assert.equal(b.lines[0]!.err, 'HTTP 400');
    await Promise.all([a.p.stop(0), b.p.stop(0)]);
  });
  it('gives up after the retries on an unreachable endpoint, never throwing to the caller', async () => {
    const gone = await webhook<FluxEvent>([202]);
    await gone.close();
    const { p, count, lines } = poster(gone.url);
    p.post(event(1));
    await p.drained();
    assert.equal(await count('failed'), 1);
    assert.equal((lines[0] as { attempts?: number }).attempts, 5, 'the first attempt and 4 retries');
    await p.stop(0);
  });
  it('drops the oldest waiting event when too many wait, and counts it', async () => {
    const ep = await endpoint([202]);
    const { p, count } = poster(ep.url, { maxPending: 2, concurrency: 1 });
    for (let n = 1; n <= 5; n++) p.post(event(n)); // 1 in flight, 2..5 queue in 2 places
    await p.drained();
    assert.deepEqual(ep.bodies.map((b) => b.message), ['change 1', 'change 4', 'change 5']);
    assert.equal(await count('dropped'), 2);
    assert.equal(await count('success'), 3);
    await p.stop(0);
  });
});
