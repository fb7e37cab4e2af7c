// The seed's behaviour on a real API server: which sources trigger which HelmReleases, and when not.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { contentDigest } from '../../src/digest.js';
import { fixture, reconciledSince, reconciles, requestedAt } from './fixture.js';
import { ApiException } from '@kubernetes/client-node';
import { FORCE_AT, metricValue, REQUESTED_AT, waitForEvent } from './hrto.js';
import {
  core,
  createConfigMap,
  createHelmRelease,
  createNamespace,
  DIGEST,
  eventually,
  getHelmRelease,
  LEGACY_LABEL,
  labeledConfigMap,
  patchConfigMap,
  waitForRecordedDigest,
  WATCH_LABEL,
} from './support.js';

const RFC3339_NANO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;

describe('triggering', () => {
  it('a content change force-triggers the named HelmRelease once, with an Event, then records the digest', async (t) => {
    const { ns, triggers } = await fixture(t, 'trig-single');
    await createHelmRelease(ns, 'app');
    await createConfigMap(labeledConfigMap(ns, 'values', { targets: 'app', targetNamespace: ns }));
    await waitForRecordedDigest(ns, 'values'); // first sight of a release never deployed: adopted
    assert.equal(triggers.count('app'), 0);

    await patchConfigMap(ns, 'values', { data: { 'values.yaml': 'replicas: 2\n' } });
    await triggers.waitFor('app', 1);
    const digest = await waitForRecordedDigest(ns, 'values');
    assert.equal(digest, contentDigest({ data: { 'values.yaml': 'replicas: 2\n' } }));

    const hr = await getHelmRelease(ns, 'app');
    const at = hr.metadata.annotations?.[REQUESTED_AT];
    assert.match(at ?? '', RFC3339_NANO);
    assert.equal(hr.metadata.annotations?.[FORCE_AT], at, 'forceAt equals requestedAt');
    const event = await waitForEvent(ns, { kind: 'HelmRelease', name: 'app', reason: 'Triggered' });
    assert.equal(event.type, 'Normal');
    assert.ok(event.message.includes(`ConfigMap ${ns}/values`) && event.message.includes(digest.slice(0, 19)), event.message);
    assert.equal(triggers.count('app'), 1);
  });

  it('a comma list with messy spacing and duplicates triggers each release exactly once', async (t) => {
    const { ns, triggers, hrto } = await fixture(t, 'trig-list');
    for (const name of ['a', 'b', 'c']) await createHelmRelease(ns, name);
    await createConfigMap(labeledConfigMap(ns, 'values', { targets: '  a ,b,, a ,  ', targetNamespace: ns }));
    await waitForRecordedDigest(ns, 'values');
    await patchConfigMap(ns, 'values', { data: { 'values.yaml': 'x: 1\n' } });
    await triggers.waitFor('a', 1);
    await triggers.waitFor('b', 1);
    await waitForRecordedDigest(ns, 'values');
    const before = await reconciles(hrto);
    await patchConfigMap(ns, 'values', { metadata: { labels: { touched: 'yes' } } });
    await reconciledSince(hrto, before);
    assert.equal(triggers.count('a'), 1);
    assert.equal(triggers.count('b'), 1);
    assert.equal(triggers.count('c'), 0, 'not named');
  });

  it('targets the default namespace when none is named, the named one otherwise, across namespaces', async (t) => {
    const other = await createNamespace('trig-other');
    const { ns, triggers } = await fixture(t, 'trig-ns', { defaultNamespace: other }, { extraNamespaces: [other] });
    const otherTriggers = await (await import('./hrto.js')).TriggerLog.start(other);
    t.after(() => otherTriggers.stop());
    await createHelmRelease(other, 'shared');
    await createHelmRelease(ns, 'local');
    await createConfigMap(labeledConfigMap(ns, 'default-ns', { targets: 'shared' }));
    await createConfigMap(labeledConfigMap(ns, 'explicit-ns', { targets: 'local', targetNamespace: ns }));
    await waitForRecordedDigest(ns, 'default-ns');
    await waitForRecordedDigest(ns, 'explicit-ns');
    await patchConfigMap(ns, 'default-ns', { data: { v: '2' } });
    await patchConfigMap(ns, 'explicit-ns', { data: { v: '2' } });
    await otherTriggers.waitFor('shared', 1); // cross-namespace: source in ns, release in other
    await triggers.waitFor('local', 1);
    assert.equal(otherTriggers.total(), 1);
    assert.equal(triggers.total(), 1);
  });

  it('ignores unlabeled ConfigMaps; the legacy label spelling is refused by the API server itself', async (t) => {
    const { ns, triggers, hrto } = await fixture(t, 'trig-labels');
    await createHelmRelease(ns, 'app');
    // Two '/' make it an invalid label key: no object can carry it, so hrto has nothing to watch for it.
    await assert.rejects(
      createConfigMap(labeledConfigMap(ns, 'legacy', { targets: 'app', targetNamespace: ns, labels: { [LEGACY_LABEL]: 'true' } })),
      (err: unknown) => err instanceof ApiException && err.code === 422,
    );
    assert.ok(hrto.logs.some((l) => l.msg.includes('not valid label keys') && JSON.stringify(l.labels).includes(LEGACY_LABEL)));
    await createConfigMap(labeledConfigMap(ns, 'watched', { targets: 'app', targetNamespace: ns }));
    await createConfigMap(labeledConfigMap(ns, 'unlabeled', { targets: 'app', targetNamespace: ns, labels: {} }));
    await createConfigMap(labeledConfigMap(ns, 'false-label', { targets: 'app', targetNamespace: ns, labels: { [WATCH_LABEL]: 'false' } }));
    await waitForRecordedDigest(ns, 'watched');
    const before = await reconciles(hrto);
    await patchConfigMap(ns, 'unlabeled', { data: { v: '2' } });
    await patchConfigMap(ns, 'false-label', { data: { v: '2' } });
    await patchConfigMap(ns, 'watched', { metadata: { labels: { touched: 'yes' } } }); // a fence the watch delivers after them
    await reconciledSince(hrto, before);
    assert.equal(triggers.count('app'), 0);
    for (const name of ['unlabeled', 'false-label']) {
      const cm = await core.readNamespacedConfigMap({ namespace: ns, name });
      assert.equal(cm.metadata?.annotations?.[DIGEST], undefined, `${name} is never touched`);
    }
  });

  it('a label removed means the ConfigMap is no longer watched', async (t) => {
    const { ns, triggers, hrto } = await fixture(t, 'trig-unlabel');
    await createHelmRelease(ns, 'app');
    await createConfigMap(labeledConfigMap(ns, 'values', { targets: 'app', targetNamespace: ns }));
    await waitForRecordedDigest(ns, 'values');
    await patchConfigMap(ns, 'values', { metadata: { labels: { [WATCH_LABEL]: null } } });
    await eventually('hrto to drop the source', async () => (await metricValue(hrto.metrics, 'hrto_watched_sources')) === 0);
    await patchConfigMap(ns, 'values', { data: { v: 'changed while unlabeled' } });
    await createConfigMap(labeledConfigMap(ns, 'fence', { targets: 'app', targetNamespace: ns }));
    await waitForRecordedDigest(ns, 'fence');
    assert.equal(triggers.count('app'), 0);
  });

  it('label and annotation edits, its own digest write and rewriting equal content do not re-trigger', async (t) => {
    const { ns, triggers, hrto } = await fixture(t, 'trig-noop');
    await createHelmRelease(ns, 'app');
    await createConfigMap(labeledConfigMap(ns, 'values', { targets: 'app', targetNamespace: ns, data: { k: 'v1' } }));
    await waitForRecordedDigest(ns, 'values');
    await patchConfigMap(ns, 'values', { data: { k: 'v2' } });
    await triggers.waitFor('app', 1);
    await waitForRecordedDigest(ns, 'values'); // hrto's own write must not count as a change
    const first = await requestedAt(ns, 'app');

    const before = await reconciles(hrto);
    await patchConfigMap(ns, 'values', { metadata: { labels: { team: 'a' }, annotations: { note: 'edited' } } });
    await patchConfigMap(ns, 'values', { data: { k: 'v2' } }); // equal content
    const cm = await core.readNamespacedConfigMap({ namespace: ns, name: 'values' });
    await core.replaceNamespacedConfigMap({ namespace: ns, name: 'values', body: { ...cm, data: { k: 'v2' } } });
    await reconciledSince(hrto, before);
    assert.equal(await requestedAt(ns, 'app'), first);
    assert.equal(triggers.count('app'), 1);
  });

  it('a binaryData change triggers', async (t) => {
    const { ns, triggers } = await fixture(t, 'trig-binary');
    await createHelmRelease(ns, 'app');
    const binary = (s: string) => Buffer.from(s).toString('base64');
    await createConfigMap(labeledConfigMap(ns, 'values', { targets: 'app', targetNamespace: ns, binaryData: { 'blob.bin': binary('one') } }));
    await waitForRecordedDigest(ns, 'values');
    await patchConfigMap(ns, 'values', { binaryData: { 'blob.bin': binary('two') } });
    await triggers.waitFor('app', 1);
  });

  it('--trigger-mode=reconcile sets requestedAt only', async (t) => {
    const { ns, triggers } = await fixture(t, 'trig-mode', { triggerMode: 'reconcile' });
    await createHelmRelease(ns, 'app');
    await createConfigMap(labeledConfigMap(ns, 'values', { targets: 'app', targetNamespace: ns }));
    await waitForRecordedDigest(ns, 'values');
    await patchConfigMap(ns, 'values', { data: { v: '2' } });
    await triggers.waitFor('app', 1);
    const annotations = (await getHelmRelease(ns, 'app')).metadata.annotations ?? {};
    assert.match(annotations[REQUESTED_AT] ?? '', RFC3339_NANO);
    assert.equal(annotations[FORCE_AT], undefined);
  });

  it('--key-domain switches every key', async (t) => {
    const { ns, triggers } = await fixture(t, 'trig-domain', { keyDomain: 'nebius.ai' });
    await createHelmRelease(ns, 'app');
    await createHelmRelease(ns, 'ignored');
    await createConfigMap({
      metadata: {
        name: 'values',
        namespace: ns,
        labels: { 'nebius.ai/helmrelease-trigger-operator': 'true' },
        annotations: { 'nebius.ai/helmreleases-name': 'app', 'nebius.ai/helmreleases-namespace': ns },
      },
      data: { v: '1' },
    });
    // Keys of the default domain mean nothing under another domain.
    await createConfigMap(labeledConfigMap(ns, 'default-domain', { targets: 'ignored', targetNamespace: ns }));
    const digest = await (await import('./support.js')).eventually('nebius.ai digest', async () => {
      const cm = await core.readNamespacedConfigMap({ namespace: ns, name: 'values' });
      return cm.metadata?.annotations?.['nebius.ai/config-digest'];
    });
    assert.match(digest, /^sha256:/);
    await patchConfigMap(ns, 'values', { data: { v: '2' } });
    await patchConfigMap(ns, 'default-domain', { data: { v: '2' } });
    await triggers.waitFor('app', 1);
    assert.equal(triggers.count('ignored'), 0);
  });

  it('deleting a ConfigMap does not trigger; a failed release is triggered like a healthy one', async (t) => {
    const { ns, triggers, hrto } = await fixture(t, 'trig-delete');
    await createHelmRelease(ns, 'app');
    await createHelmRelease(ns, 'broken');
    const { setLastRelease } = await import('./support.js');
    await setLastRelease(ns, 'broken', new Date(Date.now() + 3600_000), 'failed');
    await createConfigMap(labeledConfigMap(ns, 'values', { targets: 'app', targetNamespace: ns }));
    await createConfigMap(labeledConfigMap(ns, 'broken-values', { targets: 'broken', targetNamespace: ns }));
    await waitForRecordedDigest(ns, 'values');
    await waitForRecordedDigest(ns, 'broken-values');
    const before = await reconciles(hrto);
    await core.deleteNamespacedConfigMap({ namespace: ns, name: 'values' });
    await reconciledSince(hrto, before);
    assert.equal(triggers.count('app'), 0);
    await patchConfigMap(ns, 'broken-values', { data: { fixed: 'true' } });
    await triggers.waitFor('broken', 1);
    // The Event is written after the patch, so it may land a moment after the watch saw the trigger.
    await waitForEvent(ns, { kind: 'HelmRelease', name: 'broken', reason: 'Triggered' });
  });
});
