// The first bench's scenarios: burst (defaults under 1,000 changes; with a peer, the Go original's
// too; run.ts folds it into cpu, the same workload unthrottled) and upgrade (with Flux's real
// controllers). The client-side latency of 500 changes at 25/s is reaction's.
import { versus } from '../figures.js';
import { HrtoProcess } from '../hrto.js';
import { type Operator } from '../operators.js';
import {
  byOperator,
  compared,
  type Ctx,
  createNamespace,
  HR,
  inBatches,
  percentiles,
  recordedCount,
  say,
  type ScenarioResult,
  table,
  until,
  watchTriggers,
  withAdoptedPairs,
  writeSource,
} from '../lib.js';
import { cpuSeconds } from '../proc.js';
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
