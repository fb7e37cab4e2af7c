// npm run demo: hrto on an embedded local control plane, in three steps so a first run shows
// something within minutes: (1) the control plane (kube-apiserver and etcd, built from the Go module
// proxy on first use); (2) hrto's loop on the API server alone (a ConfigMap edit becomes a forced
// reconcile request on a HelmRelease) while Flux's controllers build in the background; (3) the
// whole loop with Flux's own source-controller and helm-controller: a release installed from a
// chart, its ConfigMap edited, hrto triggering, helm-controller upgrading. HRTO_DEMO_FLUX=0 stops
// after step 2; so does a Flux build or start that fails, saying why. HRTO_DEMO_KEEP=1 (or `npm run
// demo -- --keep`) leaves everything running to explore, until Ctrl-C.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { resolveConfig } from '../src/config.js';
import { startController } from '../src/controller.js';
import { formatReport, runExplain } from '../src/explain.js';
import { KubeApi } from '../src/kube/api.js';
import { kubeConfigCredentials } from '../src/kube/credentials.js';
import { createLogger, prettyLogger } from '../src/log.js';
import { createMetrics } from '../src/metrics.js';
import { installHelmReleaseCrd } from '../test/harness/cluster.js';
import { controlPlaneBinaries, deployBinaries, ensureBinaries, fluxBinaries, lastBuildSeconds, minutes } from '../test/harness/binaries.js';
import { ControlPlane } from '../test/harness/controlplane.js';
import { DEMO_CHART, DEMO_CHART_VERSION, FluxControllers } from '../test/harness/flux.js';

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const step = (s: string) => console.log(`\n${bold(`==> ${s}`)}`);
const say = (s: string) => console.log(`    ${s}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const HR = { group: 'helm.toolkit.fluxcd.io', version: 'v2', plural: 'helmreleases' } as const;

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

const started = Date.now();
const since = (): string => minutes((Date.now() - started) / 1000);

interface Cluster {
  core: CoreV1Api;
  custom: CustomObjectsApi;
}

/**
 * One loop in its own namespace: a HelmRelease reading an unlabeled ConfigMap through valuesFrom,
 * adopted, then the ConfigMap edited and the release triggered. With Flux, helm-controller installs
 * and upgrades it; without, the demo records a release the way helm-controller would.
 */
async function loop({ core, custom }: Cluster, ns: string, flux: FluxControllers | undefined): Promise<void> {
  const getRelease = async () => (await custom.getNamespacedCustomObject({ ...HR, namespace: ns, name: 'podinfo' })) as HelmReleaseJson;
  const digestOf = async () =>
    (await core.readNamespacedConfigMap({ namespace: ns, name: 'podinfo-values' })).metadata?.annotations?.['uburro.github.com/config-digest'];
  await core.createNamespace({ body: { metadata: { name: ns } } });
  // The values the HelmRelease reads. Not labeled: hrto finds it through spec.valuesFrom.
  await core.createNamespacedConfigMap({
    namespace: ns,
    body: { metadata: { name: 'podinfo-values', namespace: ns }, data: { 'values.yaml': 'message: hello from the first values\n' } },
  });
  const chart = flux
    ? { chart: DEMO_CHART, version: DEMO_CHART_VERSION, sourceRef: { kind: 'HelmRepository', name: 'demo' }, interval: '1h' }
    : { chart: 'podinfo', sourceRef: { kind: 'HelmRepository', name: 'podinfo' } };
  if (flux) {
    await custom.createNamespacedCustomObject({
      group: 'source.toolkit.fluxcd.io',
      version: 'v1',
      plural: 'helmrepositories',
      namespace: ns,
      body: { apiVersion: 'source.toolkit.fluxcd.io/v1', kind: 'HelmRepository', metadata: { name: 'demo', namespace: ns }, spec: { url: flux.repositoryUrl, interval: '1h' } },
    });
  }
  say(`HelmRelease ${ns}/podinfo reads ConfigMap ${ns}/podinfo-values through spec.valuesFrom`);
  await custom.createNamespacedCustomObject({
    ...HR,
    namespace: ns,
    body: {
      apiVersion: 'helm.toolkit.fluxcd.io/v2',
      kind: 'HelmRelease',
      metadata: { name: 'podinfo', namespace: ns },
      spec: { interval: '1h', chart: { spec: chart }, valuesFrom: [{ kind: 'ConfigMap', name: 'podinfo-values' }] },
    },
  });

  const rendered = async () => (await core.readNamespacedConfigMap({ namespace: ns, name: 'podinfo-rendered' }).catch(() => undefined))?.data?.message;
  const revision = (n: number) => async () => {
    const latest = (await getRelease()).status?.history?.[0];
    return latest?.version === n && latest.status === 'deployed' ? latest : undefined;
  };
  if (flux) {
    await until('the install', revision(1));
    say(`helm-controller installed revision 1; the chart rendered message: "${await rendered()}"`);
  } else {
    say('(no helm-controller runs yet, so the demo records a release the way helm-controller would)');
    await sleep(1100);
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    await custom.patchNamespacedCustomObjectStatus(
      {
        ...HR,
        namespace: ns,
        name: 'podinfo',
        body: { status: { history: [{ name: 'podinfo', namespace: ns, version: 1, status: 'deployed', chartName: 'podinfo', chartVersion: '6.9.0', configDigest: `sha256:${'0'.repeat(64)}`, digest: `sha256:${'1'.repeat(64)}`, firstDeployed: now, lastDeployed: now }] } },
      },
      mergePatch,
    );
  }
  const first = await until('the adoption', digestOf);
  const marked = (await core.readNamespacedConfigMap({ namespace: ns, name: 'podinfo-values' })).metadata;
  say(`hrto labeled the ConfigMap (${Object.entries(marked?.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(', ')})`);
  say(`and adopted it: the release is newer than its content, so no upgrade; digest ${first.slice(0, 19)}…`);

  say('Editing the ConfigMap: a new message');
  const edited = Date.now();
  await core.patchNamespacedConfigMap({ namespace: ns, name: 'podinfo-values', body: { data: { 'values.yaml': 'message: hello from the edited values\n' } } }, mergePatch);
  const annotations = await until('the trigger', async () => {
    const a = (await getRelease()).metadata.annotations;
    return a?.['reconcile.fluxcd.io/forceAt'] ? a : undefined;
  });
  say(bold(`hrto triggered HelmRelease ${ns}/podinfo ${Date.now() - edited} ms after the edit, as 'flux reconcile hr podinfo --force' does (${since()} into the demo):`));
  for (const [k, v] of Object.entries(annotations)) if (k.startsWith('reconcile.fluxcd.io/')) say(`  ${k}: ${v}`);
  if (flux) {
    await until('the upgrade', revision(2));
    say(`helm-controller upgraded to revision 2 ${((Date.now() - edited) / 1000).toFixed(1)}s after the edit; rendered message: "${await rendered()}"`);
    say(`status.lastHandledForceAt: ${(await getRelease()).status?.lastHandledForceAt}`);
  }
  await until('the digest record', async () => ((await digestOf()) !== first ? true : undefined));
  await sleep(300);
  for (const e of (await core.listNamespacedEvent({ namespace: ns })).items.filter((e) => e.reportingComponent === 'helmrelease-trigger-operator')) {
    say(`Event: ${(e.type ?? '').padEnd(8)} ${(e.reason ?? '').padEnd(10)} ${e.involvedObject.kind}/${e.involvedObject.name}: ${e.message}`);
  }
}

/** An executable of that name on PATH. */
function onPath(name: string): boolean {
  return (process.env.PATH ?? '').split(path.delimiter).some((dir) => dir !== '' && existsSync(path.join(dir, name)));
}

const keep = process.env.HRTO_DEMO_KEEP === '1' || process.argv.includes('--keep');
const controlPlane = new ControlPlane({ log: say });
let flux: FluxControllers | undefined;
let stopHrto: (() => Promise<void>) | undefined;
try {
  const wantFlux = process.env.HRTO_DEMO_FLUX !== '0';
  const cpBuilt = lastBuildSeconds(controlPlaneBinaries);
  step(`1/3 A local control plane: etcd and kube-apiserver${cpBuilt === undefined ? ', built from the Go module proxy on this first run' : ''}`);
  if (wantFlux) say(`next: hrto on this API server, while Flux's controllers build; then the full loop with them`);
  await controlPlane.start();
  const kc = new KubeConfig();
  kc.loadFromFile(controlPlane.kubeconfigPath);
  const crd = await installHelmReleaseCrd(kc);
  say(`API server ${controlPlane.apiserverUrl} (${since()} into the demo); HelmRelease CRD from helm-controller ${crd}`);
  const cluster = { core: kc.makeApiClient(CoreV1Api), custom: kc.makeApiClient(CustomObjectsApi) };

  // Flux's controllers build in the background while step 2 runs on the API server alone.
  const fluxBins = [fluxBinaries.sourceController, fluxBinaries.helmController, deployBinaries.helm];
  const fluxBuild = wantFlux ? ensureBinaries(fluxBins, (msg) => say(`[flux build] ${msg}`)).then(() => undefined, (err: unknown) => err as Error) : undefined;

  step('2/3 hrto on the API server alone (its logs below)');
  const config = resolveConfig({ metricsBindAddress: '0', healthProbeBindAddress: '0', logLevel: 'info' });
  const api = await KubeApi.create(kubeConfigCredentials(kc), { qps: config.kubeApiQps, burst: config.kubeApiBurst });
  const controller = startController(config, { api, log: await prettyLogger('info'), metrics: createMetrics() });
  stopHrto = async () => {
    await controller.stop();
    api.close();
  };
  await controller.started;
  await loop(cluster, 'demo-api', undefined);

  let ns = 'demo-api';
  if (fluxBuild) {
    step("3/3 The full loop with Flux's source-controller and helm-controller");
    // Asked of the build itself: a warm cache is built already, whatever was recorded of earlier builds.
    const built = await Promise.race([fluxBuild.then(() => true), sleep(0).then(() => false)]);
    const expected = lastBuildSeconds(fluxBins);
    if (!built) say(`Flux's controllers: still building (${expected === undefined ? 'a first build takes several minutes on 2 cores' : `the last build took ${minutes(expected)}`})`);
    const failed = await fluxBuild;
    flux = new FluxControllers(controlPlane.kubeconfigPath, kc, say);
    try {
      if (failed) throw failed;
      const versions = await flux.start();
      say(`source-controller ${versions.sourceController}, helm-controller ${versions.helmController}; chart repository ${flux.repositoryUrl} (${since()} into the demo)`);
      ns = 'demo';
      await loop(cluster, ns, flux);
    } catch (err) {
      say(`Flux controllers unavailable (${(err as Error).message.split('\n')[0]}); the loop above showed hrto on the API server alone`);
      await flux.stop();
      flux = undefined;
    }
  }

  step('Editing only a label: the content is unchanged, so nothing is triggered');
  const before = (await cluster.custom.getNamespacedCustomObject({ ...HR, namespace: ns, name: 'podinfo' })) as HelmReleaseJson;
  await cluster.core.patchNamespacedConfigMap({ namespace: ns, name: 'podinfo-values', body: { metadata: { labels: { team: 'web' } } } }, mergePatch);
  await sleep(1500);
  const after = (await cluster.custom.getNamespacedCustomObject({ ...HR, namespace: ns, name: 'podinfo' })) as HelmReleaseJson;
  const unchanged = after.metadata.annotations?.['reconcile.fluxcd.io/requestedAt'] === before.metadata.annotations?.['reconcile.fluxcd.io/requestedAt'];
  say(`requestedAt unchanged: ${unchanged}`);
  if (!unchanged) throw new Error('demo: a label edit triggered the release');

  step(`hrto explain --namespace ${ns}`);
  const report = await runExplain(config, api, createLogger('warn'), { namespace: ns });
  process.stdout.write(`${formatReport(report).trimEnd().replace(/^/gm, '    ')}\n`);

  if (keep) {
    step(`Done in ${since()}: everything stays up to explore, until Ctrl-C`);
    say('In another terminal, from this directory:');
    say(`  export KUBECONFIG=${controlPlane.kubeconfigPath}`);
    say(`  kubectl -n ${ns} edit configmap podinfo-values     # change the message: hrto triggers the release (at most once`);
    say('                                                    # per 30 s each: --min-trigger-interval; explain says until when)');
    say(`  npm run -s hrto -- explain -n ${ns}                  # what feeds the release, its digests, what is pending and why`);
    say(`  kubectl -n ${ns} annotate helmrelease podinfo 'uburro.github.com/trigger-windows=[{"cron": "0 3 * * *", "window": "1h"}]'`);
    say('                                                    # then edit the ConfigMap again: the change is held (the release');
    say('                                                    # suspended by hrto) until 03:00 UTC, and explain says so');
    if (!onPath('kubectl')) say('(kubectl is not on this PATH: any recent kubectl will do)');
    await new Promise<void>((resolve) => {
      for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => resolve());
    });
    step('Stopping hrto, the Flux controllers and the control plane');
  } else {
    step(`Done in ${since()}: stopping hrto, the Flux controllers and the control plane (HRTO_DEMO_KEEP=1 keeps them up)`);
  }
} finally {
  await stopHrto?.();
  await flux?.stop();
  await controlPlane.stop();
}
process.exit(0);
