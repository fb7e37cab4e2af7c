// Installing hrto like a real operator: kustomize and Helm (both built from the Go module proxy)
// render config/ and charts/, the API server accepts the result, and the rendered ServiceAccount is
// proven to need exactly its RBAC: hrto runs with that identity, and cannot do anything else.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parseWindows } from '../../src/rollout/window.js';
import { projectRoot } from '../harness/binaries.js';
import {
  apply,
  applyIdentity,
  chartDir,
  docs,
  helm,
  helmTemplate as renderChart,
  kustomize,
  NAME,
  type Obj,
  SYSTEM_NAMESPACE,
} from '../harness/manifests.js';
import { can, serviceAccountKubeConfig } from '../harness/identity.js';
import { startHrto, TriggerLog } from './hrto.js';
import { hrto } from './process.js';
import {
  createConfigMap,
  createHelmRelease,
  createNamespace,
  createSecret,
  eventually,
  kc,
  patchConfigMap,
  readSource,
  waitForRecordedDigest,
  REFUSED,
} from './support.js';

const run = promisify(execFile);
const SYSTEM = SYSTEM_NAMESPACE;

const helmTemplate = (set: string[] = []): Promise<Obj[]> => renderChart(kc, set);

const dryRunApply = (list: readonly Obj[]): Promise<void> => apply(kc, list, 'All');

async function ensureSystemNamespace(): Promise<void> {
  await apply(kc, [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: SYSTEM } }]);
}

const find = (list: readonly Obj[], kind: string, name = NAME): Obj | undefined => list.find((o) => o.kind === kind && o.metadata.name === name);

interface Container {
  args: string[];
  env: { name: string; value: string }[];
  securityContext: Record<string, unknown>;
  livenessProbe: { httpGet: { path: string } };
  readinessProbe: { httpGet: { path: string } };
  resources: { limits: Record<string, string>; requests: Record<string, string> };
}

function container(deployment: Obj | undefined): Container {
  const spec = (deployment as unknown as { spec: { template: { spec: { containers: Container[] } } } }).spec;
  return spec.template.spec.containers[0]!;
}

function rules(list: readonly Obj[], kind: 'ClusterRole' | 'Role', name: string): unknown {
  return (find(list, kind, name) as unknown as { rules: unknown } | undefined)?.rules;
}

describe('install manifests', () => {
  it('kustomize build config/default renders the documented objects, and the API server accepts them', async () => {
    const list = await kustomize('default');
    const kinds = list.map((o) => `${o.kind}/${o.metadata.name}`).sort();
    assert.deepEqual(kinds, [
      `ClusterRole/${NAME}`,
      `ClusterRoleBinding/${NAME}`,
      `Deployment/${NAME}`,
      `Namespace/${SYSTEM}`,
      `Role/${NAME}-leader-election`,
      `RoleBinding/${NAME}-leader-election`,
      `ServiceAccount/${NAME}`,
      `ValidatingAdmissionPolicy/${NAME}-annotations`,
      `ValidatingAdmissionPolicyBinding/${NAME}-annotations`,
    ]);
    // The admission policy and its binding are cluster-scoped, like the Cluster* kinds.
    for (const o of list) if (o.kind !== 'Namespace' && !/^(Cluster|ValidatingAdmissionPolicy)/.test(o.kind)) assert.equal(o.metadata.namespace, SYSTEM, o.kind);
    const c = container(find(list, 'Deployment'));
    assert.equal(c.livenessProbe.httpGet.path, '/healthz');
    assert.equal(c.readinessProbe.httpGet.path, '/readyz');
    assert.deepEqual(c.securityContext, { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    assert.ok(c.resources.limits.memory && c.resources.requests.cpu);
    for (const name of ['MAX_CONCURRENCY', 'CACHE_SYNC_TIMEOUT', 'LOG_LEVEL']) assert.ok(c.env.some((e) => e.name === name), name);
    await ensureSystemNamespace();
    await dryRunApply(list);
  });

  it('config/metrics adds a metrics Service, a ServiceMonitor and the alert rules', async () => {
    const list = await kustomize('metrics');
    const service = find(list, 'Service', `${NAME}-metrics`);
    assert.ok(service && find(list, 'ServiceMonitor') && find(list, 'PrometheusRule'));
    await ensureSystemNamespace();
    // The monitoring.coreos.com kinds need the Prometheus Operator's CRDs; the Service is core.
    await dryRunApply([service]);
  });

  it("config/flux-events is the default install posting to Flux's notification-controller", async () => {
    const list = await kustomize('flux-events');
    assert.deepEqual(
      list.map((o) => `${o.kind}/${o.metadata.name}`).sort(),
      (await kustomize('default')).map((o) => `${o.kind}/${o.metadata.name}`).sort(),
    );
    assert.ok(container(find(list, 'Deployment')).args.includes('--events-addr=http://notification-controller.flux-system.svc.cluster.local./'));
    await ensureSystemNamespace();
    await dryRunApply(list);
  });

  it('the Helm chart renders the same RBAC, a value for every flag, refuses bad values, lints and packages', async () => {
    const chart = await helmTemplate();
    const kustomized = await kustomize('default');
    assert.deepEqual(rules(chart, 'ClusterRole', NAME), rules(kustomized, 'ClusterRole', NAME));
    assert.deepEqual(rules(chart, 'Role', `${NAME}-leader-election`), rules(kustomized, 'Role', `${NAME}-leader-election`));
    await ensureSystemNamespace();
    await dryRunApply(chart);

    // Every flag of `hrto --help` is reachable from values (the seed's three through their env vars).
    const help = hrto(['--help']);
    assert.equal(await help.code, 0);
    const flags = new Set([...help.stdout().matchAll(/(--[a-z][a-z-]+)/g)].map((m) => m[1]!));
    const all = await helmTemplate(['watchNamespaces={a,b}', 'watchLabelSelector=x=y', 'helmreleaseLabelSelector=z', 'metrics.service.enabled=true', 'metrics.serviceMonitor.enabled=true', 'metrics.prometheusRule.enabled=true', 'eventsAddr=http://notification-controller.flux-system.svc.cluster.local./', 'triggerWindows[0].cron=0 8 * * 1-5', 'triggerWindows[0].timeZone=Europe/Berlin', 'triggerWindows[0].window=8h']);
    const c = container(find(all, 'Deployment'));
    // The windows reach hrto as the JSON its flag parses.
    const windows = c.args.find((a) => a.startsWith('--trigger-windows='))!.slice('--trigger-windows='.length);
    assert.deepEqual(parseWindows(windows, '--trigger-windows').map((w) => w.text), ['0 8 * * 1-5 Europe/Berlin 8h']);
    const set = new Set(c.args.map((a) => a.split('=')[0]!));
    const byEnv: Record<string, string> = { '--max-concurrency': 'MAX_CONCURRENCY', '--cache-sync-timeout': 'CACHE_SYNC_TIMEOUT', '--log-level': 'LOG_LEVEL' };
    // In-cluster identity and the Lease's namespace come from the pod; --help and --version are not settings.
    const notSettings = new Set(['--help', '--kubeconfig', '--leader-election-namespace', '--version']);
    for (const flag of flags) {
      if (notSettings.has(flag)) continue;
      if (byEnv[flag]) assert.ok(c.env.some((e) => e.name === byEnv[flag]), flag);
      else assert.ok(set.has(flag), `no value reaches ${flag}`);
    }
    const rulesDoc = find(all, 'PrometheusRule') as unknown as { spec: unknown };
    const shipped = docs(readFileSync(path.join(projectRoot, 'config', 'monitoring', 'prometheus-rules.yaml'), 'utf8'))[0] as unknown as { spec: unknown };
    assert.deepEqual(rulesDoc.spec, shipped.spec, 'the chart ships the same alert rules');

    for (const bad of ['triggerMode=sometimes', 'maxConcurrency=0', 'debounce=soon', 'unknownValue=1', 'kubeApiBurst=0', 'eventsAddr=notification-controller:80', 'waveTimeout=soon', 'maxUpgradesInFlight=-1', 'triggerWindows[0].cron=0 8 * * *']) {
      await assert.rejects(helmTemplate([bad]), /values don't meet the specifications|schema/i, bad);
    }
    await helm(['lint', chartDir, '--strict']);
    const out = mkdtempSync(path.join(tmpdir(), 'hrto-chart-'));
    try {
      await helm(['package', chartDir, '--destination', out]);
      assert.deepEqual(readdirSync(out), [`${NAME}-0.1.0.tgz`]);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it("RBAC is minimal: hrto runs the core scenario as the rendered ServiceAccount, which can do nothing else", async (t) => {
    // Create the identity for real, from the rendered manifests.
    await applyIdentity(kc);
    const sa = await serviceAccountKubeConfig(kc, SYSTEM, NAME);

    const ns = await createNamespace('rbac');
    const triggers = await TriggerLog.start(ns);
    t.after(() => triggers.stop());
    await createHelmRelease(ns, 'app', { valuesFrom: [{ kind: 'ConfigMap', name: 'values' }, { kind: 'Secret', name: 'creds' }] });
    await createConfigMap({ metadata: { name: 'values', namespace: ns }, data: { 'values.yaml': 'a: 1\n' } });
    await createSecret(ns, 'creds', { 'values.yaml': 'b: 1\n' });
    const h = await startHrto(
      { watchNamespaces: ns, leaderElect: 'true', leaderElectionNamespace: SYSTEM, leaderElectionId: `hrto-rbac-${ns}` },
      { kc: sa },
    );
    t.after(() => h.stop());
    // Autodiscovery (metadata read, patch), digests (patch), the trigger (patch), Events, the Lease.
    await eventually('the Secret marked', async () => (await readSource('Secret', ns, 'creds')).annotations['uburro.github.com/helmreleases-name'] === 'app');
    await waitForRecordedDigest(ns, 'values');
    await waitForRecordedDigest(ns, 'creds', 30_000, 'Secret');
    await patchConfigMap(ns, 'values', { data: { 'values.yaml': 'a: 2\n' } });
    await triggers.waitFor('app', 1);
    await waitForRecordedDigest(ns, 'values');
    const denied = h.logs.filter((l) => REFUSED.test(JSON.stringify(l)));
    assert.deepEqual(denied, [], 'no request of hrto was refused');

    // The core test files, with hrto (only hrto) running as the ServiceAccount.
    const dir = mkdtempSync(path.join(tmpdir(), 'hrto-sa-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const saKubeconfig = path.join(dir, 'kubeconfig');
    writeFileSync(saKubeconfig, sa.exportConfig(), { mode: 0o600 });
    const coreFiles = ['trigger', 'lifecycle', 'secrets', 'discovery'].map((f) => path.join(projectRoot, 'test', 'integration', `${f}.test.ts`));
    // A test runner of its own (not a child of this one: NODE_TEST_CONTEXT dropped).
    const env = { ...process.env };
    delete env.NODE_TEST_CONTEXT;
    const suite = await run(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=1', ...coreFiles], {
      cwd: projectRoot,
      env: { ...env, HRTO_TEST_HRTO_KUBECONFIG: saKubeconfig },
      maxBuffer: 16 << 20,
    }).catch((err: { stdout?: string; stderr?: string; message: string }) => {
      throw new Error(`core tests as the ServiceAccount failed:\n${err.stdout ?? ''}${err.stderr ?? err.message}`);
    });
    assert.match(suite.stdout, /^ℹ fail 0$/m);
    const passed = Number(/^ℹ pass (\d+)$/m.exec(suite.stdout)?.[1] ?? 0);
    assert.ok(passed >= 25, `${passed} core tests passed as the ServiceAccount`);
    t.diagnostic(`${passed} core tests passed with hrto running as the ServiceAccount`);

    for (const [verb, resource, namespace, group] of [
      ['patch', 'configmaps', ns, ''],
      ['watch', 'secrets', undefined, ''],
      ['patch', 'helmreleases', ns, 'helm.toolkit.fluxcd.io'],
      ['create', 'events', ns, ''],
      ['update', 'leases', SYSTEM, 'coordination.k8s.io'],
    ] as const) {
      assert.equal(await can(sa, verb, resource, namespace, group), true, `can ${verb} ${resource}`);
    }
    for (const [verb, resource, namespace, group] of [
      ['create', 'configmaps', ns, ''],
      ['update', 'configmaps', ns, ''],
      ['delete', 'configmaps', ns, ''],
      ['create', 'secrets', ns, ''],
      ['delete', 'secrets', ns, ''],
      ['create', 'helmreleases', ns, 'helm.toolkit.fluxcd.io'],
      ['update', 'helmreleases', ns, 'helm.toolkit.fluxcd.io'],
      ['delete', 'helmreleases', ns, 'helm.toolkit.fluxcd.io'],
      ['delete', 'events', ns, ''],
      ['get', 'pods', ns, ''],
      ['patch', 'deployments', ns, 'apps'],
      ['list', 'namespaces', undefined, ''],
      ['update', 'leases', 'kube-system', 'coordination.k8s.io'],
      ['delete', 'leases', SYSTEM, 'coordination.k8s.io'],
      ['create', 'serviceaccounts/token', SYSTEM, ''],
      ['create', 'clusterroles', undefined, 'rbac.authorization.k8s.io'],
    ] as const) {
      assert.equal(await can(sa, verb, resource, namespace, group), false, `cannot ${verb} ${resource}${namespace ? ` in ${namespace}` : ''}`);
    }
  });
});

