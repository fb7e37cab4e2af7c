// Least privilege in every install mode: cluster-wide (the default), scoped to listed namespaces
// (Roles there, nothing cluster-wide) and Secrets off (no rule on Secrets). kustomize and the chart
// render the same identity in each mode, and hrto runs as the rendered ServiceAccount: it can do
// what the mode needs and nothing more, and never meets a 403.
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { type KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { resolveConfig } from '../../src/config.js';
import { runExplain } from '../../src/explain.js';
import { KubeApi } from '../../src/kube/api.js';
import { kubeConfigCredentials } from '../../src/kube/credentials.js';
import { createLogger } from '../../src/log.js';
import { can, serviceAccountKubeConfig } from '../harness/identity.js';
import { apply, helmTemplate, isolatedIdentity, kustomize, NAME, type Obj, SYSTEM_NAMESPACE } from '../harness/manifests.js';
import { type Hrto, startHrto, TriggerLog, waitForEvent } from './hrto.js';
import {
  createConfigMap,
  createHelmRelease,
  createNamespace,
  createSecret,
  eventually,
  kc,
  labeledConfigMap,
  patchConfigMap,
  patchSecret,
  readSource,
  sleep,
  waitForRecordedDigest,
  WATCH_LABEL,
  REFUSED,
} from './support.js';

const HELM = 'helm.toolkit.fluxcd.io';
const VERBS = ['get', 'list', 'watch', 'patch'] as const;

/** What RBAC says, without the labels each renderer adds. */
function identity(list: readonly Obj[]): unknown[] {
  return list
    .filter((o) => ['ServiceAccount', 'Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding'].includes(o.kind))
    .map(({ kind, metadata, rules, roleRef, subjects }) => ({ kind, namespace: metadata.namespace, name: metadata.name, rules, roleRef, subjects }))
    .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

function args(list: readonly Obj[]): string[] {
  const deployment = list.find((o) => o.kind === 'Deployment') as unknown as { spec: { template: { spec: { containers: { args: string[] }[] } } } };
  return deployment.spec.template.spec.containers[0]!.args;
}

/** Applies a render's identity under unique names and returns a kubeconfig acting as its ServiceAccount. */
async function installIdentity(t: TestContext, list: readonly Obj[], suffix: string): Promise<KubeConfig> {
  await apply(kc, [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: SYSTEM_NAMESPACE } }]);
  const objects = isolatedIdentity(list, suffix);
  await apply(kc, objects);
  t.after(async () => {
    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    for (const o of objects) {
      if (o.kind === 'ClusterRole') await rbac.deleteClusterRole({ name: o.metadata.name });
      if (o.kind === 'ClusterRoleBinding') await rbac.deleteClusterRoleBinding({ name: o.metadata.name });
    }
  });
  return serviceAccountKubeConfig(kc, SYSTEM_NAMESPACE, `${NAME}${suffix}`);
}

const refused = (h: Hrto): unknown[] => h.logs.filter((l) => REFUSED.test(JSON.stringify(l)));

describe('RBAC modes', () => {
  it('kustomize and the chart render the same identity cluster-wide, scoped and without Secrets', async () => {
    const [clusterWide, scoped, noSecrets] = await Promise.all([kustomize('default'), kustomize('scoped'), kustomize('no-secrets')]);
    assert.deepEqual(identity(await helmTemplate(kc)), identity(clusterWide));
    assert.deepEqual(identity(await helmTemplate(kc, ['watchNamespaces={apps,payments}'])), identity(scoped));
    assert.deepEqual(identity(await helmTemplate(kc, ['watchSecrets=false'])), identity(noSecrets));

    // Scoped: a Role per listed namespace with the cluster-wide rules, and nothing cluster-wide.
    const clusterRules = (clusterWide.find((o) => o.kind === 'ClusterRole') as unknown as { rules: unknown }).rules;
    const roles = scoped.filter((o) => o.kind === 'Role' && o.metadata.name === NAME);
    assert.deepEqual(roles.map((o) => o.metadata.namespace).sort(), ['apps', 'payments']);
    for (const role of roles) assert.deepEqual((role as unknown as { rules: unknown }).rules, clusterRules);
    assert.deepEqual(scoped.filter((o) => o.kind.startsWith('Cluster')), []);
    assert.ok(args(scoped).includes('--watch-namespaces=apps,payments'));

    // Secrets off: the same rules less Secrets, and the flag that keeps hrto away from them.
    assert.ok(!JSON.stringify(identity(noSecrets)).includes('secrets'));
    assert.ok(args(noSecrets).includes('--watch-secrets=false'));
    assert.ok((await helmTemplate(kc, ['watchSecrets=false'])).some((o) => o.kind === 'Deployment' && args([o]).includes('--watch-secrets=false')));
  });

  it('Secrets off: no access to any Secret; a labeled Secret is ignored and said to be; ConfigMaps trigger as before', async (t) => {
    const sa = await installIdentity(t, await helmTemplate(kc, ['watchSecrets=false']), '-nosecrets');
    const ns = await createNamespace('nosecrets');
    for (const verb of VERBS) {
      assert.equal(await can(sa, verb, 'secrets'), false, `${verb} secrets cluster-wide`);
      assert.equal(await can(sa, verb, 'secrets', ns), false, `${verb} secrets in ${ns}`);
      assert.equal(await can(sa, verb, 'configmaps', ns), true, `${verb} configmaps`);
    }

    const triggers = await TriggerLog.start(ns);
    t.after(() => triggers.stop());
    await createHelmRelease(ns, 'app', { valuesFrom: [{ kind: 'ConfigMap', name: 'values' }, { kind: 'Secret', name: 'creds' }] });
    await createHelmRelease(ns, 'secret-fed', { valuesFrom: [{ kind: 'Secret', name: 'only-secret' }] });
    await createConfigMap({ metadata: { name: 'values', namespace: ns }, data: { 'values.yaml': 'a: 1\n' } });
    await createSecret(ns, 'creds', { 'values.yaml': 'b: 1\n' });
    await createSecret(ns, 'only-secret', { 'values.yaml': 'c: 1\n' });
    await createSecret(ns, 'labeled', { 'values.yaml': 'd: 1\n' }, { labels: { [WATCH_LABEL]: 'true' }, annotations: { 'uburro.github.com/helmreleases-name': 'secret-fed', 'uburro.github.com/helmreleases-namespace': ns } });
    const settings = { watchNamespaces: ns, watchSecrets: 'false' };
    const h = await startHrto(settings, { kc: sa });
    t.after(() => h.stop());

    await waitForRecordedDigest(ns, 'values');
    const said = await eventually('the Secrets-off line', () => Promise.resolve(h.logs.find((l) => /Secrets are off/.test(l.msg))));
    assert.equal(said.secretReferences, 2);
    await patchSecret(ns, 'only-secret', { stringData: { 'values.yaml': 'c: 2\n' } });
    await patchSecret(ns, 'labeled', { stringData: { 'values.yaml': 'd: 2\n' } });
    const before = triggers.count('app');
    await patchConfigMap(ns, 'values', { data: { 'values.yaml': 'a: 2\n' } });
    await triggers.waitFor('app', before + 1);
    await sleep(2_000); // time enough for a Secret change to have reached a watcher of Secrets
    assert.equal(triggers.count('secret-fed'), 0, 'a Secret change triggers nothing');
    for (const name of ['creds', 'only-secret', 'labeled']) {
      const secret = await readSource('Secret', ns, name);
      assert.equal(secret.annotations['uburro.github.com/config-digest'], undefined, `${name} has no digest`);
      assert.equal(secret.labels[WATCH_LABEL], name === 'labeled' ? 'true' : undefined, `${name} was not marked`);
    }
    assert.deepEqual(refused(h), [], 'hrto never asked for a Secret');

    // explain, as the same identity, says why the Secrets do not count.
    const config = resolveConfig(settings);
    const api = await KubeApi.create(kubeConfigCredentials(sa));
    const report = await runExplain(config, api, createLogger('warn'), { namespace: ns }).finally(() => api.close());
    const row = report.releases.find((r) => r.release === `${ns}/secret-fed`)!.sources[0]!;
    assert.deepEqual([row.source, row.state, row.reason], [`Secret/${ns}/only-secret`, 'unwatched', 'ignored: Secrets are off (--watch-secrets=false)']);
  });

  it('scoped: access in the listed namespaces only; triggers inside; a source outside is never read; a target outside is refused', async (t) => {
    const [a, b, outside] = await Promise.all([createNamespace('scoped-a'), createNamespace('scoped-b'), createNamespace('scoped-out')]);
    const sa = await installIdentity(t, await helmTemplate(kc, [`watchNamespaces={${a},${b}}`]), '-scoped');
    for (const [resource, group] of [['configmaps', ''], ['secrets', ''], ['helmreleases', HELM], ['events', '']] as const) {
      const verbs = resource === 'events' ? ['create', 'patch'] : VERBS;
      for (const verb of verbs) {
        for (const ns of [a, b]) assert.equal(await can(sa, verb, resource, ns, group), true, `${verb} ${resource} in ${ns}`);
        assert.equal(await can(sa, verb, resource, outside, group), false, `${verb} ${resource} in ${outside}`);
        assert.equal(await can(sa, verb, resource, undefined, group), false, `${verb} ${resource} cluster-wide`);
      }
    }

    const triggers = await TriggerLog.start(a);
    const remote = await TriggerLog.start(outside);
    t.after(() => Promise.all([triggers.stop(), remote.stop()]));
    await createHelmRelease(a, 'app');
    await createHelmRelease(outside, 'remote');
    const h = await startHrto({ watchNamespaces: `${a},${b}` }, { kc: sa });
    t.after(() => h.stop());
    // Across two listed namespaces: b's source triggers a's release.
    await createConfigMap(labeledConfigMap(b, 'shared', { targets: 'app', targetNamespace: a }));
    await waitForRecordedDigest(b, 'shared');
    const first = triggers.count('app');
    await patchConfigMap(b, 'shared', { data: { 'values.yaml': 'replicas: 2\n' } });
    await triggers.waitFor('app', first + 1);
    // A target outside the list: refused with the policy's Warning, not a 403.
    await createConfigMap(labeledConfigMap(a, 'to-remote', { targets: 'remote', targetNamespace: outside }));
    const warning = await waitForEvent(a, { kind: 'ConfigMap', name: 'to-remote', reason: 'CrossNamespaceRefused' });
    assert.match(warning.message, new RegExp(`namespace ${outside}, outside --watch-namespaces`));
    // A source outside the list naming a release inside: never read, never recorded.
    await createConfigMap(labeledConfigMap(outside, 'stranger', { targets: 'app', targetNamespace: a }));
    await patchConfigMap(outside, 'stranger', { data: { 'values.yaml': 'replicas: 3\n' } });
    const second = triggers.count('app');
    await patchConfigMap(b, 'shared', { data: { 'values.yaml': 'replicas: 4\n' } });
    await triggers.waitFor('app', second + 1);
    await sleep(2_000);
    assert.equal(triggers.count('app'), second + 1, 'only the listed source triggered');
    assert.equal(remote.count('remote'), 0);
    assert.equal((await readSource('ConfigMap', outside, 'stranger')).annotations['uburro.github.com/config-digest'], undefined);
    assert.deepEqual(refused(h), [], 'no request of hrto was refused');
  });
});
