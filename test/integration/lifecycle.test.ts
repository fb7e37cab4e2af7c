// Level-triggered behaviour: missing and suspended targets, bad references, adoption on first
// start, restarts and API errors. Nothing is lost and nothing is triggered twice.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiError } from '../../src/kube/api.js';
import type { KubeWriter } from '../../src/kube/client.js';
import { fixture, reconciledSince, reconciles } from './fixture.js';
import { events, metricValue, startHrto, TriggerLog, waitForEvent } from './hrto.js';
import {
  allRecorded,
  auditedWrites,
  configMapAnnotation,
  createConfigMap,
  createHelmRelease,
  createNamespace,
  DIGEST,
  eventually,
  inBatches,
  labeledConfigMap,
  NAMES,
  needsAudit,
  patchConfigMap,
  patchHelmRelease,
  setLastRelease,
  sleep,
  waitForRecordedDigest,
} from './support.js';

describe('lifecycle', () => {
  it('a missing HelmRelease gets a Warning, blocks the record, and is triggered as soon as it appears', async (t) => {
    const { ns, triggers, hrto } = await fixture(t, 'life-missing');
    await createHelmRelease(ns, 'present');
    await createConfigMap(labeledConfigMap(ns, 'values', { targets: 'present', targetNamespace: ns }));
    const adopted = await waitForRecordedDigest(ns, 'values');
    // Name a release that does not exist yet, then change the content.
    await patchConfigMap(ns, 'values', { metadata: { annotations: { [NAMES]: 'present,later' } }, data: { v: '2' } });
    await triggers.waitFor('present', 1);
    const warning = await waitForEvent(ns, { kind: 'ConfigMap', name: 'values', reason: 'TargetNotFound' });
    assert.equal(warning.type, 'Warning');
    assert.ok(warning.message.includes(`${ns}/later`), warning.message);
    assert.equal(await configMapAnnotation(ns, 'values', DIGEST), adopted, 'not recorded while a target is missing');
    assert.ok((await metricValue(hrto.metrics, 'hrto_missing_targets_total')) >= 1);
    assert.ok(hrto.logs.some((l) => l.msg.includes('not found') && (l.targets as string[] | undefined)?.includes(`${ns}/later`)));
    // Retried with backoff meanwhile, but reported once: one Event, one warning line, one count.
    await eventually('a few retries', () => Promise.resolve(hrto.logs.filter((l) => l.msg === 'target HelmReleases still not found; will retry').length >= 2));
    assert.equal(hrto.logs.filter((l) => l.msg === 'target HelmReleases not found; will retry').length, 1, 'one warning line for the change');
    assert.equal(await metricValue(hrto.metrics, 'hrto_missing_targets_total'), 1);
    assert.deepEqual((await events(ns)).filter((e) => e.reason === 'TargetNotFound').map((e) => e.count), [1]);

    await createHelmRelease(ns, 'later');
    await triggers.waitFor('later', 1);
    await waitForRecordedDigest(ns, 'values');
    assert.equal(triggers.count('present'), 1, 'the present release is not triggered again');
    assert.equal(
      (await configMapAnnotation(ns, 'values', NAMES)),
      'present,later',
      "the user's annotation is never rewritten",
    );
  });

  it('a suspended release is not triggered and the digest not recorded; it is triggered when resumed', async (t) => {
    const { ns, triggers } = await fixture(t, 'life-suspend');
    await createHelmRelease(ns, 'app', { suspend: true });
    await createConfigMap(labeledConfigMap(ns, 'values', { targets: 'app', targetNamespace: ns }));
    await sleep(500);
    assert.equal(await configMapAnnotation(ns, 'values', DIGEST), undefined);
    await patchConfigMap(ns, 'values', { data: { v: '2' } });
    await sleep(500);
    assert.equal(triggers.count('app'), 0);
    assert.equal(await configMapAnnotation(ns, 'values', DIGEST), undefined);
    // First sight of a never-deployed release adopts; give it a release older than the content.
    await setLastRelease(ns, 'app', new Date(Date.now() - 3600_000));
    await patchHelmRelease(ns, 'app', { spec: { suspend: false } });
    await triggers.waitFor('app', 1);
    await waitForRecordedDigest(ns, 'values');
  });

  it('missing or invalid annotations produce a Warning Event, a log line and a metric, and no patch', async (t) => {
    const { ns, triggers, hrto } = await fixture(t, 'life-invalid');
    await createHelmRelease(ns, 'app');
    const cases = [
      { name: 'no-names', targets: undefined, value: undefined },
      { name: 'bad-name', targets: 'app, Bad_Name', value: 'app, Bad_Name' },
      { name: 'empty', targets: ' , ', value: ' , ' },
      { name: 'bad-namespace', targets: 'app', targetNamespace: 'Not A Namespace', value: 'Not A Namespace' },
    ];
    for (const c of cases) {
      await createConfigMap(labeledConfigMap(ns, c.name, { targets: c.targets, targetNamespace: c.targetNamespace ?? ns }));
    }
    for (const c of cases) {
      const event = await waitForEvent(ns, { kind: 'ConfigMap', name: c.name, reason: 'InvalidReference' });
      assert.equal(event.type, 'Warning');
      assert.ok(event.message.includes('uburro.github.com/helmreleases-'), event.message);
      const line = hrto.logs.find((l) => l.source === `ConfigMap/${ns}/${c.name}` && l.msg.startsWith('invalid target reference'));
      assert.ok(line, `log line for ${c.name}`);
      assert.equal(line.value, c.value);
    }
    assert.equal(await metricValue(hrto.metrics, 'hrto_invalid_references_total'), cases.length);
    // Edits to the content of a still-invalid source: reported once per version, never retried in a loop.
    const before = await reconciles(hrto);
    await patchConfigMap(ns, 'bad-name', { data: { v: '2' } });
    await reconciledSince(hrto, before);
    await sleep(300);
    assert.equal(await metricValue(hrto.metrics, 'hrto_invalid_references_total'), cases.length + 1);
    assert.equal(await metricValue(hrto.metrics, 'hrto_queue_retries_total'), 0, 'no retry storm');
    assert.equal(triggers.total(), 0);
    for (const c of cases) assert.equal(await configMapAnnotation(ns, c.name, DIGEST), undefined);

    // Fixing the reference delivers the pending change.
    await setLastRelease(ns, 'app', new Date(Date.now() - 3600_000));
    await patchConfigMap(ns, 'bad-name', { metadata: { annotations: { [NAMES]: 'app' } } });
    await triggers.waitFor('app', 1);
  });

  it('first start over existing sources adopts releases newer than their content, triggers older ones', async (t) => {
    const ns = await createNamespace('life-adopt');
    const triggers = await TriggerLog.start(ns);
    t.after(() => triggers.stop());
    for (const name of ['fresh', 'stale', 'legacy-digest']) await createHelmRelease(ns, name);
    await createConfigMap(labeledConfigMap(ns, 'fresh-values', { targets: 'fresh', targetNamespace: ns }));
    await createConfigMap(labeledConfigMap(ns, 'stale-values', { targets: 'stale', targetNamespace: ns }));
    // An older operator's digest (adler32 hex) counts as no digest of ours.
    await createConfigMap(
      labeledConfigMap(ns, 'legacy-values', { targets: 'legacy-digest', targetNamespace: ns, annotations: { [DIGEST]: '1a2b3c4d' } }),
    );
    const future = new Date(Date.now() + 3600_000);
    await setLastRelease(ns, 'fresh', future);
    await setLastRelease(ns, 'legacy-digest', future);
    await setLastRelease(ns, 'stale', new Date(Date.now() - 3600_000));

    const hrto = await startHrto({ watchNamespaces: ns });
    t.after(() => hrto.stop());
    await triggers.waitFor('stale', 1);
    for (const cm of ['fresh-values', 'stale-values', 'legacy-values']) await waitForRecordedDigest(ns, cm);
    assert.equal(triggers.count('fresh'), 0);
    assert.equal(triggers.count('legacy-digest'), 0);
    assert.equal(triggers.count('stale'), 1);
    assert.equal(await metricValue(hrto.metrics, 'hrto_adoptions_total'), 2);
    // Quiet: one summary line for the wave, no Event (nor info line) per adopted source.
    const summaries = await eventually('the adoption summary', () => {
      const lines = hrto.logs.filter((l) => l.msg.startsWith('adopted ') && typeof l.sources === 'number');
      return Promise.resolve(lines.reduce((n, l) => n + (l.sources as number), 0) === 2 && lines);
    });
    assert.equal(summaries.length, 1, 'one line for the wave');
    assert.equal(summaries[0]!.level, 30, 'at info');
    assert.equal(hrto.logs.filter((l) => l.level >= 30 && l.msg.startsWith('adopted:')).length, 0);
    assert.deepEqual((await events(ns)).filter((e) => e.reason === 'Adopted'), []);
  });

  it('a change made during a first-sight wave is triggered ahead of the wave', needsAudit, async (t) => {
    const ns = await createNamespace('life-urgent');
    const triggers = await TriggerLog.start(ns);
    t.after(() => triggers.stop());
    const names = Array.from({ length: 300 }, (_, i) => `values-${String(i).padStart(3, '0')}`);
    await createHelmRelease(ns, 'app');
    await inBatches(names, 25, (name) => createConfigMap(labeledConfigMap(ns, name, { targets: 'app', targetNamespace: ns })));
    // Deployed after every source was written: each is adopted, none triggers.
    const deployed = new Date(Date.now() + 2000);
    await setLastRelease(ns, 'app', deployed);
    // 15 requests a second: recording 300 digests takes 20 s.
    const hrto = await startHrto({ watchNamespaces: ns, kubeApiQps: '15', kubeApiBurst: '1' });
    t.after(() => hrto.stop());
    await waitForRecordedDigest(ns, names[0]!);
    await sleep(deployed.getTime() + 1000 - Date.now()); // the change is newer than the release, to the second
    // The last source listed, so the last of the wave in queue order.
    await patchConfigMap(ns, names.at(-1)!, { data: { changed: 'during the wave' } });
    await triggers.waitFor('app', 1);
    await allRecorded(ns, names);

    const [trigger, ...more] = auditedWrites({ verb: 'patch', resource: 'helmreleases', namespace: ns, name: 'app' });
    assert.equal(more.length, 0, 'triggered once');
    const triggeredAt = Date.parse(trigger!.requestReceivedTimestamp);
    const records = auditedWrites({ verb: 'patch', resource: 'configmaps', namespace: ns }).filter((e) => e.userAgent?.startsWith('hrto/'));
    const later = records.filter((e) => Date.parse(e.requestReceivedTimestamp) > triggeredAt).length;
    // In queue order the change would come after all 299 others.
    assert.ok(later >= 100, `${later} of ${records.length} digest records came after the trigger`);
    t.diagnostic(`${later} of ${records.length} digest records came after the trigger`);
  });

  it('a change made while hrto is stopped is triggered exactly once after it starts', async (t) => {
    const ns = await createNamespace('life-restart');
    const triggers = await TriggerLog.start(ns);
    t.after(() => triggers.stop());
    await createHelmRelease(ns, 'app');
    await createConfigMap(labeledConfigMap(ns, 'values', { targets: 'app', targetNamespace: ns }));
    const first = await startHrto({ watchNamespaces: ns });
    await waitForRecordedDigest(ns, 'values');
    await first.stop();

    await patchConfigMap(ns, 'values', { data: { v: 'changed while down' } });
    const second = await startHrto({ watchNamespaces: ns });
    t.after(() => second.stop());
    await triggers.waitFor('app', 1);
    await waitForRecordedDigest(ns, 'values');
    // A third start over the recorded state changes nothing.
    const third = await startHrto({ watchNamespaces: ns });
    t.after(() => third.stop());
    await sleep(500);
    assert.equal(triggers.count('app'), 1);
  });

  it('conflicts and transient API errors are retried with backoff until the trigger lands', async (t) => {
    const failures = [409, 500, 429];
    const wrapWriter = (writer: KubeWriter): KubeWriter => ({
      ...writer,
      async patchRelease(namespace, name, patch) {
        const status = failures.shift();
        if (status) throw new ApiError(status, 'Injected', `injected ${status}`);
        await writer.patchRelease(namespace, name, patch);
      },
    });
    const { ns, triggers, hrto } = await fixture(t, 'life-retry', {}, { wrapWriter });
    await createHelmRelease(ns, 'app');
    await setLastRelease(ns, 'app', new Date(Date.now() - 3600_000));
    await createConfigMap(labeledConfigMap(ns, 'values', { targets: 'app', targetNamespace: ns }));
    await triggers.waitFor('app', 1);
    await waitForRecordedDigest(ns, 'values');
    assert.equal(failures.length, 0);
    assert.equal(await metricValue(hrto.metrics, 'hrto_triggers_total', { result: 'error' }), 3);
    assert.equal(await metricValue(hrto.metrics, 'hrto_triggers_total', { result: 'success' }), 1);
    assert.ok((await metricValue(hrto.metrics, 'hrto_queue_retries_total')) >= 3);
    assert.ok(hrto.logs.filter((l) => l.msg.includes('reconcile failed; retrying')).length >= 3);
    assert.equal(triggers.count('app'), 1);
    assert.ok((await events(ns)).every((e) => e.reason !== 'Triggered' || e.count === 1));
  });
});
