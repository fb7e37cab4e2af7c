// The foundation: a real kube-apiserver with Flux's HelmRelease CRD, reached through client-node.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiException, VersionApi } from '@kubernetes/client-node';
import { core, createHelmRelease, createNamespace, custom, getHelmRelease, helmRelease, HR, kc } from './support.js';

describe('control plane', () => {
  it('is a real kube-apiserver', async () => {
    const version = await kc.makeApiClient(VersionApi).getCode();
    console.log(`kube-apiserver ${version.gitVersion} (${version.platform}, ${version.goVersion})`);
    assert.match(version.gitVersion, /^v1\.\d+\.\d+/);
  });

  it('stores and returns a namespace, a ConfigMap and a v2 HelmRelease', async () => {
    const ns = await createNamespace('cp-roundtrip');
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'values', namespace: ns }, data: { 'values.yaml': 'a: 1\n' } } });
    await createHelmRelease(ns, 'app', { valuesFrom: [{ kind: 'ConfigMap', name: 'values' }] });

    const cm = await core.readNamespacedConfigMap({ namespace: ns, name: 'values' });
    assert.equal(cm.data?.['values.yaml'], 'a: 1\n');
    const hr = await getHelmRelease(ns, 'app');
    assert.equal((hr as unknown as { apiVersion: string }).apiVersion, 'helm.toolkit.fluxcd.io/v2');
    assert.deepEqual(hr.spec.valuesFrom, [{ kind: 'ConfigMap', name: 'values' }]);
  });

  it('enforces the CRD schema: an invalid HelmRelease is rejected', async () => {
    const ns = await createNamespace('cp-invalid');
    const invalid = [
      helmRelease(ns, 'bad-kind', { valuesFrom: [{ kind: 'Deployment', name: 'x' }] }),
      helmRelease(ns, 'bad-interval', { interval: 'every day' }),
    ];
    for (const body of invalid) {
      await assert.rejects(
        custom.createNamespacedCustomObject({ ...HR, namespace: ns, body }),
        (err: unknown) => err instanceof ApiException && err.code === 422,
        (body.metadata as { name: string }).name,
      );
    }
  });
});
