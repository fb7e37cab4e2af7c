// Autodiscovery from spec.valuesFrom, values-aware digests and helm-controller's own watch label.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fixture } from './fixture.js';
import { metricValue, TriggerLog, waitForEvent } from './hrto.js';
import {
  AUTODISCOVERED,
  createConfigMap,
  createHelmRelease,
  createNamespace,
  createSecret,
  custom,
  DIGEST,
  eventually,
  FLUX_WATCH,
  HR,
  KEY_DIGESTS,
  labeledConfigMap,
  NAMES,
  NAMESPACE,
  patchConfigMap,
  patchHelmRelease,
  readSource,
  setLastRelease,
  type SourceKind,
  waitForRecordedDigest,
  WATCH_LABEL,
} from './support.js';

const plain = (namespace: string, name: string, data: Record<string, string> = { 'values.yaml': 'a: 1\n' }) => ({
  metadata: { name, namespace },
  data,
});

const ref = (name: string, extra: Record<string, unknown> = {}) => ({ kind: 'ConfigMap', name, ...extra });

/** Waits until the source names exactly `names` and carries the watch label (or, for [], neither mark of hrto's). */
async function waitForMarks(kind: SourceKind, ns: string, name: string, names: string | undefined): Promise<Awaited<ReturnType<typeof readSource>>> {
  return eventually(`${kind} ${ns}/${name} to name ${names ?? 'nothing'}`, async () => {
    const src = await readSource(kind, ns, name);
    return src.annotations[NAMES] === names ? src : undefined;
  });
}

describe('autodiscovery', () => {
  it('labels and annotates the sources HelmReleases read, merging the names of two that share one', async (t) => {
    const { ns, hrto, triggers } = await fixture(t, 'disc-mark');
    await createConfigMap(plain(ns, 'shared'));
    await createConfigMap(plain(ns, 'own'));
    await createSecret(ns, 'creds', { 'values.yaml': 'password: x\n' });
    await createHelmRelease(ns, 'b', { valuesFrom: [ref('shared'), { kind: 'Secret', name: 'creds' }] });
    await createHelmRelease(ns, 'a', { valuesFrom: [ref('shared'), ref('own', { valuesKey: 'values.yaml', targetPath: 'x' })] });

    const shared = await waitForMarks('ConfigMap', ns, 'shared', 'a,b');
    assert.equal(shared.labels[WATCH_LABEL], 'true');
    assert.equal(shared.annotations[NAMESPACE], ns);
    assert.deepEqual(JSON.parse(shared.annotations[AUTODISCOVERED] ?? ''), { label: true, namespace: true, names: ['a', 'b'] });
    assert.equal((await waitForMarks('ConfigMap', ns, 'own', 'a')).labels[WATCH_LABEL], 'true');
    assert.equal((await waitForMarks('Secret', ns, 'creds', 'b')).labels[WATCH_LABEL], 'true');
    // Seen for the first time and never deployed: adopted, not force-upgraded.
    for (const [kind, name] of [['ConfigMap', 'shared'], ['ConfigMap', 'own'], ['Secret', 'creds']] as const) {
      await waitForRecordedDigest(ns, name, 30_000, kind);
    }
    assert.equal(triggers.total(), 0);
    assert.ok((await metricValue(hrto.metrics, 'hrto_discovery_patches_total', { result: 'success' })) >= 3);

    // The marks make them ordinary watched sources: a change triggers both readers.
    await patchConfigMap(ns, 'shared', { data: { 'values.yaml': 'a: 2\n' } });
    await triggers.waitFor('a', 1);
    await triggers.waitFor('b', 1);
  });

  it("removes only its own marks when a HelmRelease is deleted or stops reading a source; a user's survive", async (t) => {
    const { ns } = await fixture(t, 'disc-cleanup');
    const userAnnotations = { [NAMES]: 'mine', [NAMESPACE]: ns, 'team.example.com/owner': 'payments' };
    await createConfigMap({ metadata: { name: 'user', namespace: ns, labels: { [WATCH_LABEL]: 'true' }, annotations: userAnnotations }, data: { v: '1' } });
    await createConfigMap(plain(ns, 'other'));
    await createHelmRelease(ns, 'app', { valuesFrom: [ref('user', { valuesKey: 'v' }), ref('other')] });
    await waitForMarks('ConfigMap', ns, 'user', 'app,mine');
    await waitForMarks('ConfigMap', ns, 'other', 'app');
    await waitForRecordedDigest(ns, 'other');

    // valuesFrom edited: 'other' is no longer read, so everything hrto put on it goes.
    await patchHelmRelease(ns, 'app', { spec: { valuesFrom: [ref('user', { valuesKey: 'v' })] } });
    const other = await eventually('other to be unmarked', async () => {
      const src = await readSource('ConfigMap', ns, 'other');
      return src.labels[WATCH_LABEL] === undefined ? src : undefined;
    });
    for (const key of [NAMES, NAMESPACE, AUTODISCOVERED, DIGEST, KEY_DIGESTS]) assert.equal(other.annotations[key], undefined, key);

    // HelmRelease deleted: the user's source is back to exactly what the user wrote.
    await custom.deleteNamespacedCustomObject({ ...HR, namespace: ns, name: 'app' });
    const user = await waitForMarks('ConfigMap', ns, 'user', 'mine');
    assert.equal(user.labels[WATCH_LABEL], 'true', "the user's label stays");
    assert.equal(user.annotations[NAMESPACE], ns);
    assert.equal(user.annotations['team.example.com/owner'], 'payments');
    assert.equal(user.annotations[AUTODISCOVERED], undefined);
  });

  it('a change to a key no release reads triggers nothing; a change to a read key triggers only its readers', async (t) => {
    const { ns, triggers } = await fixture(t, 'disc-keys');
    await createConfigMap(plain(ns, 'shared', { 'values.yaml': 'a: 1\n', 'b.yaml': 'b: 1\n', 'unread.yaml': 'u: 1\n' }));
    await createHelmRelease(ns, 'a', { valuesFrom: [ref('shared')] });
    await createHelmRelease(ns, 'b', { valuesFrom: [ref('shared', { valuesKey: 'b.yaml' })] });
    const deployed = new Date(Date.now() + 3600_000); // releases newer than the content: adopted
    await setLastRelease(ns, 'a', deployed);
    await setLastRelease(ns, 'b', deployed);
    await waitForMarks('ConfigMap', ns, 'shared', 'a,b');
    await waitForRecordedDigest(ns, 'shared');

    await patchConfigMap(ns, 'shared', { data: { 'unread.yaml': 'u: 2\n' } });
    await waitForRecordedDigest(ns, 'shared');
    await patchConfigMap(ns, 'shared', { data: { 'b.yaml': 'b: 2\n' } });
    await triggers.waitFor('b', 1);
    const recorded = await waitForRecordedDigest(ns, 'shared');
    assert.equal(triggers.count('a'), 0, 'a reads values.yaml only');
    const keyDigests = (await readSource('ConfigMap', ns, 'shared')).annotations[KEY_DIGESTS] ?? '';
    assert.match(keyDigests, /^b\.yaml=sha256:[0-9a-f]{64},values\.yaml=sha256:[0-9a-f]{64}$/);

    await patchConfigMap(ns, 'shared', { data: { 'values.yaml': 'a: 2\n' } });
    await triggers.waitFor('a', 1);
    assert.notEqual(await waitForRecordedDigest(ns, 'shared'), recorded);
    assert.equal(triggers.count('b'), 1, 'b reads b.yaml only');
  });

  it('a source created after its HelmRelease is marked and triggered when it appears; optional or not', async (t) => {
    const { ns, triggers } = await fixture(t, 'disc-later');
    await createHelmRelease(ns, 'app', { valuesFrom: [ref('later', { optional: true }), { kind: 'Secret', name: 'later-secret' }] });
    await setLastRelease(ns, 'app', new Date(Date.now() - 3600_000));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await createConfigMap(plain(ns, 'later'));
    await waitForMarks('ConfigMap', ns, 'later', 'app');
    await triggers.waitFor('app', 1); // written after the last release: a change the release has not seen
    await waitForRecordedDigest(ns, 'later');
    await createSecret(ns, 'later-secret', { 'values.yaml': 'k: v\n' });
    await waitForMarks('Secret', ns, 'later-secret', 'app');
    await triggers.waitFor('app', 2);
    await waitForRecordedDigest(ns, 'later-secret', 30_000, 'Secret');
  });

  it('--enable-hr-autodiscovery=false marks nothing', async (t) => {
    const { ns } = await fixture(t, 'disc-off', { enableHrAutodiscovery: 'false' });
    await createConfigMap(plain(ns, 'values'));
    await createHelmRelease(ns, 'app', { valuesFrom: [ref('values')] });
    await createConfigMap(labeledConfigMap(ns, 'fence', { targets: 'app', targetNamespace: ns }));
    await waitForRecordedDigest(ns, 'fence');
    const src = await readSource('ConfigMap', ns, 'values');
    assert.equal(src.labels[WATCH_LABEL], undefined);
    assert.equal(src.annotations[NAMES], undefined);
  });
});

describe("helm-controller's watch label", () => {
  it('sources labeled reconcile.fluxcd.io/watch=Enabled are left to Flux for same-namespace readers, not for others', async (t) => {
    const other = await createNamespace('disc-flux-remote');
    const { ns, triggers } = await fixture(t, 'disc-flux', {}, { extraNamespaces: [other] });
    const remote = await TriggerLog.start(other);
    t.after(() => remote.stop());
    const old = new Date(Date.now() - 3600_000);
    await createHelmRelease(ns, 'reader', { valuesFrom: [ref('fluxed')] });
    await createHelmRelease(ns, 'named-only');
    await createHelmRelease(other, 'remote');
    for (const [n, name] of [[ns, 'reader'], [ns, 'named-only'], [other, 'remote']] as const) await setLastRelease(n, name, old);
    // The user names a release in another namespace: hrto cannot add 'reader' there, and says so.
    await createConfigMap({
      metadata: { name: 'fluxed', namespace: ns, labels: { [WATCH_LABEL]: 'true', [FLUX_WATCH]: 'Enabled' }, annotations: { [NAMES]: 'remote', [NAMESPACE]: other } },
      data: { 'values.yaml': 'a: 1\n' },
    });
    // Same namespace, named but not read through valuesFrom: helm-controller would not reconcile it.
    await createConfigMap(labeledConfigMap(ns, 'fluxed-named', { targets: 'named-only', targetNamespace: ns, labels: { [WATCH_LABEL]: 'true', [FLUX_WATCH]: 'Enabled' } }));
    const conflict = await waitForEvent(ns, { kind: 'ConfigMap', name: 'fluxed', reason: 'DiscoveryConflict' });
    assert.equal(conflict.type, 'Warning');
    await remote.waitFor('remote', 1); // first sight, content newer than the release
    await triggers.waitFor('named-only', 1);
    await waitForRecordedDigest(ns, 'fluxed');
    assert.equal(triggers.count('reader'), 0, 'left to helm-controller');

    await patchConfigMap(ns, 'fluxed', { data: { 'values.yaml': 'a: 2\n' } });
    await remote.waitFor('remote', 2);
    await waitForRecordedDigest(ns, 'fluxed');
    assert.equal(triggers.count('reader'), 0, 'still left to helm-controller');
  });

  it('--defer-to-flux-watch=false triggers them anyway', async (t) => {
    const { ns, triggers } = await fixture(t, 'disc-noflux', { deferToFluxWatch: 'false' });
    await createHelmRelease(ns, 'reader', { valuesFrom: [ref('fluxed')] });
    await setLastRelease(ns, 'reader', new Date(Date.now() + 3600_000));
    await createConfigMap({ metadata: { name: 'fluxed', namespace: ns, labels: { [FLUX_WATCH]: 'Enabled' } }, data: { 'values.yaml': 'a: 1\n' } });
    await waitForMarks('ConfigMap', ns, 'fluxed', 'reader');
    await waitForRecordedDigest(ns, 'fluxed');
    await patchConfigMap(ns, 'fluxed', { data: { 'values.yaml': 'a: 2\n' } });
    await triggers.waitFor('reader', 1);
  });
});
