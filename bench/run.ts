// npm run bench: hrto's speed, memory and API traffic on the local control plane. A benchmark, not a
// test: it prints figures and writes them to bench/results/<date>.json, with the machine and the
// versions; it passes or fails on nothing but errors.
//   npm run bench [-- latency burst upgrade memory coldstart]
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions, VersionApi } from '@kubernetes/client-node';
import { Writable } from 'node:stream';
import { contentDigest } from '../src/digest.js';
import { createLogger } from '../src/log.js';
import { type Cached, Informer } from '../src/sources/informer.js';
import { projectRoot } from '../test/harness/binaries.js';
import { installHelmReleaseCrd } from '../test/harness/cluster.js';
import { ControlPlane } from '../test/harness/controlplane.js';
import { DEMO_CHART, DEMO_CHART_VERSION, FluxControllers } from '../test/harness/flux.js';
import { freePort } from '../test/harness/processes.js';

const HR = { group: 'helm.toolkit.fluxcd.io', version: 'v2', plural: 'helmreleases' } as const;
const WATCH = 'uburro.github.com/helmrelease-trigger-operator';
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (s: string) => console.log(s);

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 600_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function inBatches<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: limit }, worker));
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function table(rows: Record<string, string | number>[]): void {
  if (rows.length === 0) return;
  const keys = Object.keys(rows[0]!);
  const cells = [keys, ...rows.map((r) => keys.map((k) => String(r[k])))];
  const widths = keys.map((_, i) => Math.max(...cells.map((c) => c[i]!.length)));
  for (const c of cells) say(`  ${c.map((v, i) => v.padEnd(widths[i]!)).join('  ')}`);
}

/** hrto as deployed: the built CLI in its own process, with its metrics and probes on loopback. */
class HrtoProcess {
  private child?: ChildProcess;
  metricsPort = 0;
  probePort = 0;
  startedAt = 0;
  constructor(private readonly kubeconfig: string, private readonly args: string[]) {}
  async start(): Promise<void> {
    this.metricsPort = await freePort();
    this.probePort = await freePort();
    this.startedAt = Date.now();
    this.child = spawn(
      process.execPath,
      [path.join(projectRoot, 'dist', 'cli.js'), '--kubeconfig', this.kubeconfig, `--metrics-bind-address=127.0.0.1:${this.metricsPort}`, `--health-probe-bind-address=127.0.0.1:${this.probePort}`, ...this.args],
      { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, LOG_LEVEL: 'warn' } },
    );
  }
  async ready(): Promise<number> {
    await until('hrto ready', async () => (await fetch(`http://127.0.0.1:${this.probePort}/readyz`)).ok);
    return Date.now() - this.startedAt;
  }
  async metrics(): Promise<Map<string, number>> {
    const text = await (await fetch(`http://127.0.0.1:${this.metricsPort}/metrics`)).text();
    return new Map(
      text
        .split('\n')
        .filter((l) => l && !l.startsWith('#'))
        .map((l) => [l.slice(0, l.lastIndexOf(' ')), Number(l.slice(l.lastIndexOf(' ') + 1))] as const),
    );
  }
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
}

/** Every distinct requestedAt a namespace's HelmReleases receive, with the time the watch saw it. */
async function watchTriggers(kc: KubeConfig, ns: string): Promise<{ seen: Map<string, { at: number; requestedAt: string }[]>; stop: () => Promise<void> }> {
  const seen = new Map<string, { at: number; requestedAt: string }[]>();
  const informer = new Informer<Cached & { requestedAt?: string }>({
    name: 'bench',
    kc,
    path: `/apis/helm.toolkit.fluxcd.io/v2/namespaces/${ns}/helmreleases`,
    log: createLogger('error', { destination: new Writable({ write: (_c, _e, cb) => cb() }) }),
    transform: (raw) => ({
      key: raw.metadata?.name ?? '',
      resourceVersion: raw.metadata?.resourceVersion ?? '',
      requestedAt: (raw.metadata as { annotations?: Record<string, string> }).annotations?.['reconcile.fluxcd.io/requestedAt'],
    }),
  });
  const record = (o: Cached & { requestedAt?: string }) => {
    if (!o.requestedAt) return;
    const list = seen.get(o.key) ?? [];
    if (list.at(-1)?.requestedAt !== o.requestedAt) list.push({ at: Date.now(), requestedAt: o.requestedAt });
    seen.set(o.key, list);
  };
  informer.addHandlers({ add: record, update: (_o, n) => record(n) });
  informer.start();
  await informer.waitForSync();
  return { seen, stop: () => informer.shutdown() };
}

interface Ctx {
  cp: ControlPlane;
  kc: KubeConfig;
  core: CoreV1Api;
  custom: CustomObjectsApi;
}

async function namespaceWithPairs(ctx: Ctx, ns: string, n: number): Promise<string[]> {
  await ctx.core.createNamespace({ body: { metadata: { name: ns } } });
  const names = Array.from({ length: n }, (_, i) => `r${i}`);
  await inBatches(names, 32, (name) =>
    ctx.custom.createNamespacedCustomObject({
      ...HR,
      namespace: ns,
      body: { apiVersion: 'helm.toolkit.fluxcd.io/v2', kind: 'HelmRelease', metadata: { name, namespace: ns }, spec: { interval: '1h', chart: { spec: { chart: 'c', sourceRef: { kind: 'HelmRepository', name: 'r' } } } } },
    }),
  );
  await inBatches(names, 32, (name) =>
    ctx.core.createNamespacedConfigMap({
      namespace: ns,
      body: {
        metadata: { name, namespace: ns, labels: { [WATCH]: 'true' }, annotations: { 'uburro.github.com/helmreleases-name': name, 'uburro.github.com/helmreleases-namespace': ns } },
        data: { 'values.yaml': 'v: 0\n' },
      },
    }),
  );
  return names;
}

async function recordedCount(ctx: Ctx, ns: string): Promise<number> {
  let count = 0;
  let cont: string | undefined;
  do {
    const page = await ctx.core.listNamespacedConfigMap({ namespace: ns, limit: 1000, _continue: cont });
    count += page.items.filter((cm) => cm.metadata?.annotations?.['uburro.github.com/config-digest'] === contentDigest({ data: cm.data, binaryData: cm.binaryData })).length;
    cont = page.metadata?._continue || undefined;
  } while (cont);
  return count;
}

/** hrto's writes in a namespace from the audit log: its patches carry its field manager; Events are its own. */
function hrtoWrites(cp: ControlPlane, ns: string): number {
  return readFileSync(cp.auditLogPath, 'utf8')
    .split('\n')
    .filter((l) => l.includes(`/namespaces/${ns}/`))
    .map((l) => JSON.parse(l) as { requestURI: string; verb: string; objectRef?: { resource?: string } })
    .filter((e) => e.requestURI.includes('fieldManager=helmrelease-trigger-operator') || e.objectRef?.resource === 'events').length;
}

const scenarios: Record<string, (ctx: Ctx) => Promise<Record<string, unknown>>> = {
  async latency(ctx) {
    const ns = 'bench-latency';
    const names = await namespaceWithPairs(ctx, ns, 50);
    // hrto's own latency: no debounce, interval or throttle in the way.
    const h = new HrtoProcess(ctx.cp.kubeconfigPath, [`--watch-namespaces=${ns}`, '--debounce=0s', '--min-trigger-interval=0s', '--max-triggers-per-second=0']);
    await h.start();
    await h.ready();
    await until('adoption', async () => (await recordedCount(ctx, ns)) === names.length);
    const watch = await watchTriggers(ctx.kc, ns);
    const writesBefore = hrtoWrites(ctx.cp, ns);
    const changes = 500;
    const rate = 25;
    const written: { name: string; at: number }[] = [];
    const start = Date.now();
    for (let i = 0; i < changes; i++) {
      const due = start + (i * 1000) / rate;
      if (due > Date.now()) await sleep(due - Date.now());
      const name = names[i % names.length]!;
      await ctx.core.patchNamespacedConfigMap({ namespace: ns, name, body: { data: { 'values.yaml': `v: ${i + 1}\n` } } }, mergePatch);
      written.push({ name, at: Date.now() });
    }
    await until('every change triggered', () => Promise.resolve(written.every((w) => (watch.seen.get(w.name) ?? []).some((s) => s.at >= w.at)) || undefined), 120_000);
    await until('every digest recorded', async () => (await recordedCount(ctx, ns)) === names.length);
    const latencies = written.map((w) => watch.seen.get(w.name)!.find((s) => s.at >= w.at)!.at - w.at).sort((a, b) => a - b);
    const triggers = [...watch.seen.values()].reduce((n, l) => n + l.length, 0);
    await sleep(1500);
    const writes = hrtoWrites(ctx.cp, ns) - writesBefore;
    const m = await h.metrics();
    await watch.stop();
    await h.stop();
    const result = {
      changes,
      ratePerSecond: rate,
      p50Ms: quantile(latencies, 0.5),
      p99Ms: quantile(latencies, 0.99),
      maxMs: latencies.at(-1),
      triggers,
      apiWritesPerTrigger: Number((writes / triggers).toFixed(2)),
      hrtoHistogramCount: m.get('hrto_trigger_latency_seconds_count'),
    };
    say('latency: source write accepted -> HelmRelease annotated (seen through a watch), --debounce=0s');
    table([{ changes, 'rate/s': rate, 'p50 ms': result.p50Ms, 'p99 ms': result.p99Ms, 'max ms': result.maxMs!, 'API writes/trigger': result.apiWritesPerTrigger }]);
    return result;
  },

  async burst(ctx) {
    const ns = 'bench-burst';
    const names = await namespaceWithPairs(ctx, ns, 100);
    const h = new HrtoProcess(ctx.cp.kubeconfigPath, [`--watch-namespaces=${ns}`]); // the defaults users get
    await h.start();
    await h.ready();
    await until('adoption', async () => (await recordedCount(ctx, ns)) === names.length);
    const watch = await watchTriggers(ctx.kc, ns);
    const started = Date.now();
    const edits = Array.from({ length: 1000 }, (_, i) => ({ name: names[i % names.length]!, round: Math.floor(i / names.length) + 1 }));
    await inBatches(edits, 50, (e) => ctx.core.patchNamespacedConfigMap({ namespace: ns, name: e.name, body: { data: { 'values.yaml': `v: ${e.round}\n` } } }, mergePatch));
    const written = Date.now() - started;
    await until('every final state recorded', async () => (await recordedCount(ctx, ns)) === names.length, 300_000);
    const drained = Date.now() - started;
    const perRelease = names.map((n) => (watch.seen.get(n) ?? []).length);
    await watch.stop();
    await h.stop();
    const result = {
      changes: edits.length,
      releases: names.length,
      writtenInMs: written,
      allTriggeredAndRecordedInMs: drained,
      patchesPerRelease: { min: Math.min(...perRelease), max: Math.max(...perRelease), total: perRelease.reduce((a, b) => a + b, 0) },
      lost: perRelease.filter((n) => n === 0).length,
      settings: 'defaults: --debounce=1s --min-trigger-interval=30s --max-triggers-per-second=10',
    };
    say('burst: 1,000 changes over 100 HelmReleases, default settings');
    table([{ changes: edits.length, 'written in s': (written / 1000).toFixed(1), 'all triggered in s': (drained / 1000).toFixed(1), 'patches/release min..max': `${result.patchesPerRelease.min}..${result.patchesPerRelease.max}`, lost: result.lost }]);
    return result;
  },

  async memory(ctx) {
    const ns = 'bench-memory';
    await ctx.core.createNamespace({ body: { metadata: { name: ns } } });
    const rows: Record<string, string | number>[] = [];
    const out: Record<string, unknown>[] = [];
    const measure = async (label: string, args: string[] = []) => {
      const h = new HrtoProcess(ctx.cp.kubeconfigPath, args);
      await h.start();
      const readyMs = await h.ready();
      await sleep(5000); // settled: initial reconciles done
      const m = await h.metrics();
      await h.stop();
      const rss = (m.get('process_resident_memory_bytes') ?? 0) / 2 ** 20;
      const heap = (m.get('nodejs_heap_size_used_bytes') ?? 0) / 2 ** 20;
      rows.push({ cluster: label, 'RSS MiB': rss.toFixed(1), 'heap MiB': heap.toFixed(1), 'ready ms': readyMs });
      out.push({ cluster: label, rssMiB: Number(rss.toFixed(1)), heapMiB: Number(heap.toFixed(1)), readyMs });
    };
    let created = 0;
    const grow = async (total: number) => {
      const todo = Array.from({ length: total - created }, (_, i) => created + i);
      await inBatches(todo, 64, (i) =>
        i % 2 === 0
          ? ctx.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: `u${i}` }, data: { 'values.yaml': `n: ${i}\n` } } })
          : ctx.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: `u${i}` }, stringData: { token: `t${i}` } } }),
      );
      created = total;
    };
    await measure('0 unlabeled');
    await grow(10_000);
    await measure('10,000 unlabeled ConfigMaps and Secrets');
    await grow(50_000);
    await measure('50,000 unlabeled ConfigMaps and Secrets');
    const watched = 'bench-watched';
    await namespaceWithPairs(ctx, watched, 10_000);
    await measure('+ 10,000 watched sources (and HelmReleases)');
    say('memory: hrto RSS and V8 heap, settled after start');
    table(rows);
    return { measurements: out };
  },

  async upgrade(ctx) {
    // Source write -> helm-controller handled the forced reconcile (upgrade started) -> revision deployed.
    const ns = 'bench-upgrade';
    await ctx.core.createNamespace({ body: { metadata: { name: ns } } });
    const flux = new FluxControllers(ctx.cp.kubeconfigPath, ctx.kc);
    await flux.start();
    const h = new HrtoProcess(ctx.cp.kubeconfigPath, [`--watch-namespaces=${ns}`, '--debounce=0s', '--min-trigger-interval=0s']);
    try {
      await h.start();
      await h.ready();
      await ctx.custom.createNamespacedCustomObject({
        group: 'source.toolkit.fluxcd.io',
        version: 'v1',
        plural: 'helmrepositories',
        namespace: ns,
        body: { apiVersion: 'source.toolkit.fluxcd.io/v1', kind: 'HelmRepository', metadata: { name: 'demo', namespace: ns }, spec: { url: flux.repositoryUrl, interval: '1h' } },
      });
      await ctx.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'values', namespace: ns }, data: { 'values.yaml': 'message: v0\n' } } });
      await ctx.custom.createNamespacedCustomObject({
        ...HR,
        namespace: ns,
        body: {
          apiVersion: 'helm.toolkit.fluxcd.io/v2',
          kind: 'HelmRelease',
          metadata: { name: 'app', namespace: ns },
          spec: { interval: '1h', chart: { spec: { chart: DEMO_CHART, version: DEMO_CHART_VERSION, sourceRef: { kind: 'HelmRepository', name: 'demo' }, interval: '1h' } }, valuesFrom: [{ kind: 'ConfigMap', name: 'values' }] },
        },
      });
      type Status = { history?: { version: number; status: string }[]; lastHandledForceAt?: string };
      const read = async () => (await ctx.custom.getNamespacedCustomObject({ ...HR, namespace: ns, name: 'app' })) as { metadata: { annotations?: Record<string, string> }; status?: Status };
      const deployed = (n: number) => async () => ((await read()).status?.history?.[0]?.version === n && (await read()).status?.history?.[0]?.status === 'deployed') || undefined;
      await until('the install', deployed(1));
      await until('the adoption', async () => (await recordedCount(ctx, ns)) === 1);
      const started: number[] = [];
      const done: number[] = [];
      const rounds = 20;
      for (let i = 1; i <= rounds; i++) {
        const at = Date.now();
        await ctx.core.patchNamespacedConfigMap({ namespace: ns, name: 'values', body: { data: { 'values.yaml': `message: v${i}\n` } } }, mergePatch);
        await until('the upgrade to start', async () => {
          const hr = await read();
          const requested = hr.metadata.annotations?.['reconcile.fluxcd.io/forceAt'];
          return (requested && Date.parse(requested) >= at - 5 && hr.status?.lastHandledForceAt === requested) || undefined;
        });
        started.push(Date.now() - at);
        await until('the new revision', deployed(i + 1));
        done.push(Date.now() - at);
      }
      started.sort((a, b) => a - b);
      done.sort((a, b) => a - b);
      const result = {
        rounds,
        upgradeStartedMs: { p50: quantile(started, 0.5), p99: quantile(started, 0.99), max: started.at(-1) },
        revisionDeployedMs: { p50: quantile(done, 0.5), p99: quantile(done, 0.99), max: done.at(-1) },
      };
      say("upgrade: source write -> helm-controller handled hrto's forced reconcile -> new revision deployed (real Flux controllers)");
      table([
        { to: 'upgrade started', 'p50 ms': result.upgradeStartedMs.p50, 'p99 ms': result.upgradeStartedMs.p99, 'max ms': result.upgradeStartedMs.max! },
        { to: 'revision deployed', 'p50 ms': result.revisionDeployedMs.p50, 'p99 ms': result.revisionDeployedMs.p99, 'max ms': result.revisionDeployedMs.max! },
      ]);
      return result;
    } finally {
      await h.stop();
      await flux.stop();
    }
  },

  async coldstart(ctx) {
    const ns = 'bench-coldstart';
    const t0 = Date.now();
    const names = await namespaceWithPairs(ctx, ns, 10_000);
    const createdMs = Date.now() - t0;
    const h = new HrtoProcess(ctx.cp.kubeconfigPath, [`--watch-namespaces=${ns}`]);
    await h.start();
    const readyMs = await h.ready();
    await until('all adopted', async () => (await recordedCount(ctx, ns)) === names.length, 600_000);
    const adoptedMs = Date.now() - h.startedAt;
    const m = await h.metrics();
    await h.stop();
    const result = { helmReleases: names.length, sources: names.length, readyMs, allAdoptedMs: adoptedMs, rssMiB: Number(((m.get('process_resident_memory_bytes') ?? 0) / 2 ** 20).toFixed(1)), fixtureCreatedInMs: createdMs };
    say('cold start: 10,000 HelmReleases and 10,000 labeled sources, first start (every source adopted)');
    table([{ 'ready (caches synced) s': (readyMs / 1000).toFixed(1), 'all adopted s': (adoptedMs / 1000).toFixed(1), 'RSS MiB': result.rssMiB }]);
    return result;
  },
};

const selected = process.argv.slice(2).filter((a) => a !== '--');
const names = selected.length > 0 ? selected : Object.keys(scenarios);
const cp = new ControlPlane({ log: (m) => say(`[controlplane] ${m}`) });
try {
  await cp.start();
  const kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  const crd = await installHelmReleaseCrd(kc);
  const ctx: Ctx = { cp, kc, core: kc.makeApiClient(CoreV1Api), custom: kc.makeApiClient(CustomObjectsApi) };
  const commit = (() => {
    try {
      return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: projectRoot }).toString().trim();
    } catch {
      return 'unknown';
    }
  })();
  const environment = {
    date: new Date().toISOString(),
    commit,
    hrto: (JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { version: string }).version,
    node: process.version,
    kubeApiserver: (await kc.makeApiClient(VersionApi).getCode()).gitVersion,
    helmReleaseCrd: crd,
    cpu: `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'unknown'}`,
    memoryGiB: Number((os.totalmem() / 2 ** 30).toFixed(1)),
    os: `${os.type()} ${os.release()}`,
  };
  say(`machine: ${environment.cpu}, ${environment.memoryGiB} GiB; node ${environment.node}; kube-apiserver ${environment.kubeApiserver}; hrto ${environment.hrto} (${commit})\n`);
  const results: Record<string, unknown> = {};
  for (const name of names) {
    const scenario = scenarios[name];
    if (!scenario) throw new Error(`unknown scenario ${name}; one of ${Object.keys(scenarios).join(', ')}`);
    results[name] = await scenario(ctx);
    say('');
  }
  mkdirSync(path.join(projectRoot, 'bench', 'results'), { recursive: true });
  const file = path.join(projectRoot, 'bench', 'results', `${environment.date.slice(0, 19).replace(/[:T]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify({ environment, results }, null, 2)}\n`);
  say(`written to ${path.relative(projectRoot, file)}`);
} finally {
  await cp.stop();
}
process.exit(0);
