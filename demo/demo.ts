// npm run demo: hrto on an embedded local control plane (kube-apiserver + etcd, no helm-controller).
// A HelmRelease and a labeled ConfigMap are created, the ConfigMap is edited, and the HelmRelease is
// shown being triggered: its reconcile annotations and the Events hrto wrote.
import { CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { resolveConfig } from '../src/config.js';
import { startController } from '../src/controller.js';
import { createLogger } from '../src/log.js';
import { createMetrics } from '../src/metrics.js';
import { installHelmReleaseCrd } from '../test/harness/cluster.js';
import { ControlPlane } from '../test/harness/controlplane.js';

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const step = (s: string) => console.log(`\n${bold(`==> ${s}`)}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const HR = { group: 'helm.toolkit.fluxcd.io', version: 'v2', plural: 'helmreleases' } as const;
const NS = 'demo';

async function until<T>(fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error('demo: timed out');
    await sleep(100);
  }
}

const controlPlane = new ControlPlane({ log: (m) => console.log(`    ${m}`) });
let stopHrto: (() => Promise<void>) | undefined;
try {
  step('Starting a local control plane (etcd + kube-apiserver built from the Go module proxy)');
  await controlPlane.start();
  const kc = new KubeConfig();
  kc.loadFromFile(controlPlane.kubeconfigPath);
  const crd = await installHelmReleaseCrd(kc);
  console.log(`    API server ${controlPlane.apiserverUrl}; HelmRelease CRD from helm-controller ${crd}`);
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);

  step('Starting hrto (logs below are its own)');
  const config = resolveConfig({ metricsBindAddress: '0', logLevel: 'info' });
  const controller = startController(config, { kc, log: createLogger('info', { pretty: true }), metrics: createMetrics() });
  stopHrto = () => controller.stop();
  await controller.started;

  step(`Creating HelmRelease ${NS}/podinfo and the ConfigMap ${NS}/podinfo-values it consumes`);
  await core.createNamespace({ body: { metadata: { name: NS } } });
  await custom.createNamespacedCustomObject({
    ...HR,
    namespace: NS,
    body: {
      apiVersion: 'helm.toolkit.fluxcd.io/v2',
      kind: 'HelmRelease',
      metadata: { name: 'podinfo', namespace: NS },
      spec: {
        interval: '1h',
        chart: { spec: { chart: 'podinfo', sourceRef: { kind: 'HelmRepository', name: 'podinfo' } } },
        valuesFrom: [{ kind: 'ConfigMap', name: 'podinfo-values' }],
      },
    },
  });
  await core.createNamespacedConfigMap({
    namespace: NS,
    body: {
      metadata: {
        name: 'podinfo-values',
        namespace: NS,
        labels: { 'uburro.github.com/helmrelease-trigger-operator': 'true' },
        annotations: { 'uburro.github.com/helmreleases-name': 'podinfo', 'uburro.github.com/helmreleases-namespace': NS },
      },
      data: { 'values.yaml': 'replicaCount: 1\n' },
    },
  });
  console.log('    (no helm-controller runs here, so the demo records a release the way helm-controller would)');
  await sleep(1100);
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  await custom.patchNamespacedCustomObjectStatus(
    {
      ...HR,
      namespace: NS,
      name: 'podinfo',
      body: {
        status: {
          history: [
            {
              name: 'podinfo', namespace: NS, version: 1, status: 'deployed', chartName: 'podinfo', chartVersion: '6.9.0',
              configDigest: `sha256:${'0'.repeat(64)}`, digest: `sha256:${'1'.repeat(64)}`, firstDeployed: now, lastDeployed: now,
            },
          ],
        },
      },
    },
    mergePatch,
  );

  const digestOf = async () =>
    (await core.readNamespacedConfigMap({ namespace: NS, name: 'podinfo-values' })).metadata?.annotations?.['uburro.github.com/config-digest'];
  const first = await until(digestOf);
  console.log(`    hrto adopted the ConfigMap: the release is newer than its content, so no upgrade; digest ${first}`);

  step('Editing the ConfigMap: replicaCount 1 -> 3');
  await core.patchNamespacedConfigMap({ namespace: NS, name: 'podinfo-values', body: { data: { 'values.yaml': 'replicaCount: 3\n' } } }, mergePatch);
  const annotations = await until(async () => {
    const hr = (await custom.getNamespacedCustomObject({ ...HR, namespace: NS, name: 'podinfo' })) as { metadata: { annotations?: Record<string, string> } };
    return hr.metadata.annotations?.['reconcile.fluxcd.io/forceAt'] ? hr.metadata.annotations : undefined;
  });
  const second = await until(async () => {
    const d = await digestOf();
    return d !== first ? d : undefined;
  });

  step(`HelmRelease ${NS}/podinfo was triggered, exactly as 'flux reconcile hr podinfo --force' does`);
  for (const [k, v] of Object.entries(annotations)) if (k.startsWith('reconcile.fluxcd.io/')) console.log(`    ${k}: ${v}`);
  console.log(`    ConfigMap digest recorded by hrto: ${second}`);

  step('Events written by hrto');
  await sleep(300);
  const events = await core.listNamespacedEvent({ namespace: NS });
  for (const e of events.items) {
    console.log(`    ${(e.type ?? '').padEnd(8)} ${(e.reason ?? '').padEnd(10)} ${e.involvedObject.kind}/${e.involvedObject.name}: ${e.message}`);
  }

  step('Editing only a label: the content is unchanged, so nothing is triggered');
  await core.patchNamespacedConfigMap({ namespace: NS, name: 'podinfo-values', body: { metadata: { labels: { team: 'web' } } } }, mergePatch);
  await sleep(1000);
  const after = (await custom.getNamespacedCustomObject({ ...HR, namespace: NS, name: 'podinfo' })) as { metadata: { annotations?: Record<string, string> } };
  const unchanged = after.metadata.annotations?.['reconcile.fluxcd.io/requestedAt'] === annotations['reconcile.fluxcd.io/requestedAt'];
  console.log(`    requestedAt unchanged: ${unchanged}`);
  if (!unchanged) throw new Error('demo: a label edit triggered the release');

  step('Done: stopping hrto and the control plane');
} finally {
  await stopHrto?.();
  await controlPlane.stop();
}
process.exit(0);
