// The first bench's scenarios: burst (defaults under 1,000 changes; with a peer, the Go original's
// too; run.ts folds it into cpu, the same workload unthrottled), upgrade (with Flux's real
// controllers), coldstart (10,000 + 10,000 adopted). The client-side latency of 500 changes at 25/s
// is reaction's.
import { byHrto } from '../audit.js';
import { versus } from '../figures.js';
import { HrtoProcess } from '../hrto.js';
import { type Operator } from '../operators.js';
import {
  byOperator,
  compared,
  type Ctx,
  cleanup,
  createNamespace,
  DIGEST,
  HR,
  inBatches,
  mib,
  namespaceWithPairs,
  percentiles,
  recordedCount,
  say,
  type ScenarioResult,
  table,
  trackRecorded,
  until,
  watchTriggers,
  withAdoptedPairs,
  writeSource,
} from '../lib.js';
import { cpuSeconds, memory } from '../proc.js';
import { MERGE_PATCH } from '../kube.js';
import { DEMO_CHART, DEMO_CHART_VERSION, FluxControllers } from '../../test/harness/flux.js';

export const throughputScenarios: Record<string, (ctx: Ctx) => Promise<ScenarioResult>> = {
  async burst(ctx) {
    const runs: { op: Operator; result: BurstResult }[] = [];
    for (const op of compared(ctx)) runs.push({ op, result: await burstRun(ctx, op) });
    const hrto = runs[0]!;
    const original = runs.find((run) => run.op.id === 'original');
    say(`burst: 1,000 changes over 100 HelmReleases, default settings${original ? ' (each its own)' : ''}`);
    table(
      runs.map(({ op, result: x }) =>
        byOperator(ctx, op, { changes: x.changes, 'written in s': (x.writtenInMs / 1000).toFixed(1), 'all triggered in s': (x.allTriggeredAndRecordedInMs / 1000).toFixed(1), 'patches/release min..max': `${x.patchesPerRelease.min}..${x.patchesPerRelease.max}`, lost: x.lost }),
      ),
    );
    if (!original) return hrto.result;
    const [h, g] = [hrto.result, original.result];
    return {
      ...h,
      original: g,
      versus: [
        versus('burst', 'burst (defaults): every final state triggered and recorded', 's', g.allTriggeredAndRecordedInMs / 1000, h.allTriggeredAndRecordedInMs / 1000),
        versus('burst', 'burst (defaults): triggers seen for 1,000 changes', 'count', g.patchesPerRelease.total, h.patchesPerRelease.total),
        versus('burst', 'burst (defaults): releases never triggered', 'count', g.lost, h.lost),
        versus('burst', 'burst (defaults): CPU from the first write to all recorded', 's', g.cpuSeconds, h.cpuSeconds),
      ],
    };
  },

  async upgrade(ctx) {
    // Source write -> helm-controller handled the forced reconcile (upgrade started) -> revision deployed.
    // Its objects stay: the HelmRelease carries helm-controller's finalizer once the controller is gone.
    const ns = 'bench-upgrade';
    await createNamespace(ctx, ns);
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
      const deployed = (n: number) => async () => {
        const latest = (await read()).status?.history?.[0];
        return (latest?.version === n && latest.status === 'deployed') || undefined;
      };
      await until('the install', deployed(1));
      await until('the adoption', async () => (await recordedCount(ctx, ns)) === 1);
      const started: number[] = [];
      const done: number[] = [];
      const rounds = 20;
      for (let i = 1; i <= rounds; i++) {
        const at = Date.now();
        await writeSource(ctx, ns, 'values', `message: v${i}\n`);
        await until('the upgrade to start', async () => {
          const hr = await read();
          const requested = hr.metadata.annotations?.['reconcile.fluxcd.io/forceAt'];
          return (requested && Date.parse(requested) >= at - 5 && hr.status?.lastHandledForceAt === requested) || undefined;
        });
        started.push(Date.now() - at);
        await until('the new revision', deployed(i + 1));
        done.push(Date.now() - at);
      }
      const s = percentiles(started);
      const d = percentiles(done);
      const result = {
        rounds,
        upgradeStartedMs: { p50: s.p50, p99: s.p99, max: s.max },
        revisionDeployedMs: { p50: d.p50, p99: d.p99, max: d.max },
      };
      say("upgrade: source write -> helm-controller handled hrto's forced reconcile -> new revision deployed (real Flux controllers)");
      table([
        { to: 'upgrade started', 'p50 ms': s.p50, 'p99 ms': s.p99, 'max ms': s.max },
        { to: 'revision deployed', 'p50 ms': d.p50, 'p99 ms': d.p99, 'max ms': d.max },
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
    // Adoption is hrto's one mass write (a digest patch per source): timed at the default client-side
    // limit and without one, on the same objects (the digests are removed between the two runs).
    const runs = [
      { label: 'default (--kube-api-qps=50 --kube-api-burst=300)', args: [] },
      { label: 'unlimited (--kube-api-qps=0)', args: ['--kube-api-qps=0'] },
    ];
    const rows: Record<string, string | number>[] = [];
    const result: Record<string, unknown> = { helmReleases: names.length, sources: names.length, fixtureCreatedInMs: createdMs };
    try {
      for (const [i, run] of runs.entries()) {
        if (i > 0) await forgetDigests(ctx, ns, names);
        const tracker = await trackRecorded(ctx, ns);
        const mark = ctx.audit.mark();
        const h = new HrtoProcess(ctx.cp.kubeconfigPath, [`--watch-namespaces=${ns}`, ...run.args]);
        try {
          await h.start();
          const readyMs = await h.ready();
          const adoptedMs = Math.round((await tracker.waitFor(names.length, 900_000)) - h.startedPerf);
          const mem = memory(h.pid);
          const writes = ctx.audit.since(mark).filter((e) => byHrto(e) && e.objectRef?.namespace === ns && e.verb !== 'list' && e.verb !== 'watch');
          const patches = writes.filter((e) => e.verb === 'patch' && e.objectRef?.resource === 'configmaps').length;
          const events = writes.filter((e) => e.objectRef?.resource === 'events').length;
          const key = i === 0 ? 'default' : 'unlimited';
          result[key] = { readyMs, allAdoptedMs: adoptedMs, rssMiB: mib(mem.rssMiB), peakRssMiB: mib(mem.hwmMiB), digestPatches: patches, events };
          rows.push({ 'client-side limit': run.label, 'ready s': (readyMs / 1000).toFixed(1), 'all adopted s': (adoptedMs / 1000).toFixed(1), 'digest patches': patches, Events: events, 'RSS MiB': mib(mem.rssMiB), 'peak RSS MiB': mib(mem.hwmMiB) });
        } finally {
          tracker.stop();
          await h.stop();
        }
      }
      say('cold start: 10,000 HelmReleases and 10,000 labeled sources, first start (every source adopted); writes from the audit log, RSS from /proc');
      table(rows);
      return result;
    } finally {
      await cleanup(ctx, ns);
    }
  },
};

type BurstResult = Awaited<ReturnType<typeof burstRun>>;

/**
 * One operator's `burst`: 100 fresh pairs, every source adopted, then 1,000 writes (50 in flight) with
 * the operator's defaults, until every final state is recorded; triggers seen per release on a watch.
 */
async function burstRun(ctx: Ctx, op: Operator) {
  const ns = 'bench-burst';
  // hrto with the defaults users get.
  return withAdoptedPairs(ctx, ns, 100, op, [], async ({ names, h }) => {
    const watch = await watchTriggers(ctx, ns);
    const cpu0 = cpuSeconds(h.pid);
    const started = Date.now();
    const edits = Array.from({ length: 1000 }, (_, i) => ({ name: names[i % names.length]!, round: Math.floor(i / names.length) + 1 }));
    await inBatches(edits, 50, (e) => writeSource(ctx, ns, e.name, `v: ${e.round}\n`));
    const written = Date.now() - started;
    await until('every final state recorded', async () => (await recordedCount(ctx, ns, op)) === names.length, 300_000);
    const drained = Date.now() - started;
    const cpu = cpuSeconds(h.pid) - cpu0;
    const perRelease = names.map((n) => (watch.seen.get(n) ?? []).length);
    watch.stop();
    return {
      changes: edits.length,
      releases: names.length,
      writtenInMs: written,
      allTriggeredAndRecordedInMs: drained,
      patchesPerRelease: { min: Math.min(...perRelease), max: Math.max(...perRelease), total: perRelease.reduce((a, b) => a + b, 0) },
      lost: perRelease.filter((n) => n === 0).length,
      cpuSeconds: Number(cpu.toFixed(2)),
      settings: op.id === 'hrto' ? 'defaults: --debounce=1s --min-trigger-interval=30s --max-triggers-per-second=10' : 'its defaults (no debounce or throttle)',
    };
  });
}

/** Removes hrto's digests, so the next start adopts every source again. */
async function forgetDigests(ctx: Ctx, ns: string, names: readonly string[]): Promise<void> {
  const annotations = { [DIGEST]: null, [`${DIGEST.slice(0, DIGEST.indexOf('/'))}/key-digests`]: null };
  await inBatches(names, 64, (name) =>
    ctx.kube.request('PATCH', `/api/v1/namespaces/${ns}/configmaps/${name}`, { contentType: MERGE_PATCH, body: { metadata: { annotations } } }),
  );
  await until('the digests removed', async () => (await recordedCount(ctx, ns)) === 0);
}
