// npm run demo: hrto on an embedded local control plane. With Flux's own source-controller and
// helm-controller (built from the Go module proxy on first use) it shows the whole loop: a
// HelmRelease installed from a chart, its ConfigMap edited, hrto triggering, helm-controller
// upgrading. If the Flux controllers cannot be built or started (or HRTO_DEMO_FLUX=0), it falls back
// to the API-server-only demo: hrto's trigger on a HelmRelease with no helm-controller to act on it.
import { CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { resolveConfig } from '../src/config.js';
import { startController } from '../src/controller.js';
import { formatReport, runExplain } from '../src/explain.js';
import { KubeApi } from '../src/kube/api.js';
import { kubeConfigCredentials } from '../src/kube/credentials.js';
import { createLogger, prettyLogger } from '../src/log.js';
import { createMetrics } from '../src/metrics.js';
import { installHelmReleaseCrd } from '../test/harness/cluster.js';
import { ControlPlane } from '../test/harness/controlplane.js';
import { DEMO_CHART, DEMO_CHART_VERSION, FluxControllers } from '../test/harness/flux.js';

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const step = (s: string) => console.log(`\n${bold(`==> ${s}`)}`);
const say = (s: string) => console.log(`    ${s}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const HR = { group: 'helm.toolkit.fluxcd.io', version: 'v2', plural: 'helmreleases' } as const;
const NS = 'demo';

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`demo: timed out waiting for ${what}`);
    await sleep(200);
  }
}

interface HelmReleaseJson {
  metadata: { annotations?: Record<string, string> };
  status?: { history?: { version: number; status: string }[]; lastHandledForceAt?: string };
}

const controlPlane = new ControlPlane({ log: say });
let flux: FluxControllers | undefined;
let stopHrto: (() => Promise<void>) | undefined;
try {
  step('Starting a local control plane (etcd + kube-apiserver built from the Go module proxy)');
  await controlPlane.start();
  const kc = new KubeConfig();
  kc.loadFromFile(controlPlane.kubeconfigPath);
  const crd = await installHelmReleaseCrd(kc);
  say(`API server ${controlPlane.apiserverUrl}; HelmRelease CRD from helm-controller ${crd}`);
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const getRelease = async () => (await custom.getNamespacedCustomObject({ ...HR, namespace: NS, name: 'podinfo' })) as HelmReleaseJson;
  const digestOf = async () =>
    (await core.readNamespacedConfigMap({ namespace: NS, name: 'podinfo-values' })).metadata?.annotations?.['uburro.github.com/config-digest'];

  if (process.env.HRTO_DEMO_FLUX !== '0') {
    step("Starting Flux's source-controller and helm-controller (built from the Go module proxy on first use)");
    flux = new FluxControllers(controlPlane.kubeconfigPath, kc, say);
    try {
      const versions = await flux.start();
      say(`source-controller ${versions.sourceController}, helm-controller ${versions.helmController}; chart repository ${flux.repositoryUrl}`);
    } catch (err) {
      say(`Flux controllers unavailable (${(err as Error).message.split('\n')[0]}); showing the API-server-only demo`);
      await flux.stop();
      flux = undefined;
    }
  }

  step('Starting hrto (logs below are its own)');
  const config = resolveConfig({ metricsBindAddress: '0', healthProbeBindAddress: '0', logLevel: 'info' });
  const api = await KubeApi.create(kubeConfigCredentials(kc));
  const controller = startController(config, { api, log: await prettyLogger('info'), metrics: createMetrics() });
  stopHrto = async () => {
    await controller.stop();
    api.close();
  };
  await controller.started;

  await core.createNamespace({ body: { metadata: { name: NS } } });
  // The values the HelmRelease reads. Not labeled: hrto finds it through spec.valuesFrom.
  await core.createNamespacedConfigMap({
    namespace: NS,
    body: { metadata: { name: 'podinfo-values', namespace: NS }, data: { 'values.yaml': 'message: hello from the first values\n' } },
  });
  const chart = flux
    ? { chart: DEMO_CHART, version: DEMO_CHART_VERSION, sourceRef: { kind: 'HelmRepository', name: 'demo' }, interval: '1h' }
    : { chart: 'podinfo', sourceRef: { kind: 'HelmRepository', name: 'podinfo' } };
  if (flux) {
    await custom.createNamespacedCustomObject({
      group: 'source.toolkit.fluxcd.io',
      version: 'v1',
      plural: 'helmrepositories',
      namespace: NS,
      body: { apiVersion: 'source.toolkit.fluxcd.io/v1', kind: 'HelmRepository', metadata: { name: 'demo', namespace: NS }, spec: { url: flux.repositoryUrl, interval: '1h' } },
    });
  }
  step(`Creating HelmRelease ${NS}/podinfo with valuesFrom ConfigMap ${NS}/podinfo-values`);
  await custom.createNamespacedCustomObject({
    ...HR,
    namespace: NS,
    body: {
      apiVersion: 'helm.toolkit.fluxcd.io/v2',
      kind: 'HelmRelease',
      metadata: { name: 'podinfo', namespace: NS },
      spec: { interval: '1h', chart: { spec: chart }, valuesFrom: [{ kind: 'ConfigMap', name: 'podinfo-values' }] },
    },
  });

  const rendered = async () => (await core.readNamespacedConfigMap({ namespace: NS, name: 'podinfo-rendered' }).catch(() => undefined))?.data?.message;
  const revision = (n: number) => async () => {
    const latest = (await getRelease()).status?.history?.[0];
    return latest?.version === n && latest.status === 'deployed' ? latest : undefined;
  };
  if (flux) {
    await until('the install', revision(1));
    say(`helm-controller installed revision 1; the chart rendered message: "${await rendered()}"`);
  } else {
    say('(no helm-controller runs here, so the demo records a release the way helm-controller would)');
    await sleep(1100);
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    await custom.patchNamespacedCustomObjectStatus(
      {
        ...HR,
        namespace: NS,
        name: 'podinfo',
        body: { status: { history: [{ name: 'podinfo', namespace: NS, version: 1, status: 'deployed', chartName: 'podinfo', chartVersion: '6.9.0', configDigest: `sha256:${'0'.repeat(64)}`, digest: `sha256:${'1'.repeat(64)}`, firstDeployed: now, lastDeployed: now }] } },
      },
      mergePatch,
    );
  }
  const first = await until('the adoption', digestOf);
  const marked = (await core.readNamespacedConfigMap({ namespace: NS, name: 'podinfo-values' })).metadata;
  say(`hrto labeled the ConfigMap (${Object.entries(marked?.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(', ')})`);
  say(`and adopted it: the release is newer than its content, so no upgrade; digest ${first.slice(0, 19)}…`);

  step('Editing the ConfigMap: a new message');
  const edited = Date.now();
  await core.patchNamespacedConfigMap({ namespace: NS, name: 'podinfo-values', body: { data: { 'values.yaml': 'message: hello from the edited values\n' } } }, mergePatch);
  const annotations = await until('the trigger', async () => {
    const a = (await getRelease()).metadata.annotations;
    return a?.['reconcile.fluxcd.io/forceAt'] ? a : undefined;
  });
  step(`hrto triggered HelmRelease ${NS}/podinfo, exactly as 'flux reconcile hr podinfo --force' does`);
  for (const [k, v] of Object.entries(annotations)) if (k.startsWith('reconcile.fluxcd.io/')) say(`${k}: ${v}`);
  if (flux) {
    await until('the upgrade', revision(2));
    say(`helm-controller upgraded to revision 2 ${((Date.now() - edited) / 1000).toFixed(1)}s after the edit; rendered message: "${await rendered()}"`);
    say(`status.lastHandledForceAt: ${(await getRelease()).status?.lastHandledForceAt}`);
  }
  await until('the digest record', async () => ((await digestOf()) !== first ? true : undefined));

  step('Events written by hrto');
  await sleep(300);
  for (const e of (await core.listNamespacedEvent({ namespace: NS })).items.filter((e) => e.reportingComponent === 'helmrelease-trigger-operator')) {
    say(`${(e.type ?? '').padEnd(8)} ${(e.reason ?? '').padEnd(10)} ${e.involvedObject.kind}/${e.involvedObject.name}: ${e.message}`);
  }

  step('Editing only a label: the content is unchanged, so nothing is triggered');
  await core.patchNamespacedConfigMap({ namespace: NS, name: 'podinfo-values', body: { metadata: { labels: { team: 'web' } } } }, mergePatch);
  await sleep(1500);
  const unchanged = (await getRelease()).metadata.annotations?.['reconcile.fluxcd.io/requestedAt'] === annotations['reconcile.fluxcd.io/requestedAt'];
  say(`requestedAt unchanged: ${unchanged}`);
  if (!unchanged) throw new Error('demo: a label edit triggered the release');

  step('hrto explain --namespace demo');
  const report = await runExplain(config, api, createLogger('warn'), { namespace: NS });
  process.stdout.write(`${formatReport(report).trimEnd().replace(/^/gm, '    ')}\n`);

  step('Done: stopping hrto, the Flux controllers and the control plane');
} finally {
  await stopHrto?.();
  await flux?.stop();
  await controlPlane.stop();
}
process.exit(0);
