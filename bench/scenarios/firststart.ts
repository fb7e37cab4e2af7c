// firststart: what hrto costs the first time it meets a cluster, on the two fixtures users ask about.
//  1. Installed into 1,000 releases helm-controller already deployed after their sources were written:
//     no release may be upgraded for it; time until every source carries its digest, CPU, peak RSS;
//     with the default heap and with NODE_OPTIONS=--max-old-space-size=128.
//  2. 10,000 sources + 10,000 HelmReleases, cluster-wide with the defaults (as installed): ready,
//     every source adopted (hrto's one mass write: a digest patch per source, at --kube-api-qps=50),
//     its writes from the audit log, RSS when adopted and settled (the sizing figure); then again
//     unlimited (--kube-api-qps=0) after the digests are removed; with a peer, the Go original last.
import { byHrto, isReleasePatch } from '../audit.js';
import { figure, type Figure, type Versus, versus } from '../figures.js';
import { HrtoProcess } from '../hrto.js';
import { MERGE_PATCH } from '../kube.js';
import type { Operator } from '../operators.js';
import {
  BENCH_MANAGER,
  byOperator,
  cleanup,
  compared,
  createNamespace,
  type Ctx,
  GO,
  helmRelease,
  HR_API,
  inBatches,
  markDeployed,
  mib,
  NAMES,
  NAMESPACE,
  namespaceWithPairs,
  recordedCount,
  say,
  type ScenarioResult,
  settledMemory,
  sleep,
  table,
  trackRecorded,
  until,
  WATCH,
} from '../lib.js';
import { cpuSeconds, memory, RssSampler } from '../proc.js';
import { DEFAULTS } from '../../src/config.js';
import { keysFor } from '../../src/keys.js';

const INSTALLED_INTO = 1000;
const COLD = 10_000;

// hrto's writes go through its client-side limit (--kube-api-qps/--kube-api-burst, Flux's defaults):
// n digest patches cannot land sooner than (n - burst) / qps seconds, whatever hrto does.
const limitFloorSeconds = (writes: number): number => Math.max(0, writes - Number(DEFAULTS.kubeApiBurst)) / Number(DEFAULTS.kubeApiQps);

export const firstStartScenarios: Record<string, (ctx: Ctx) => Promise<ScenarioResult>> = {
  async firststart(ctx) {
    const installed = await intoDeployedReleases(ctx);
    const cold = await coldCluster(ctx);
    return { installedInto: installed.results, cold: cold.results, figures: [...installed.figures, ...cold.figures], ...(cold.versus.length > 0 ? { versus: cold.versus } : {}) };
  },
};

/** Part 1: hrto started on releases deployed after their sources were written, with two heaps. */
async function intoDeployedReleases(ctx: Ctx): Promise<{ results: Record<string, unknown>; figures: Figure[] }> {
  const variants: { key: string; label: string; env: NodeJS.ProcessEnv }[] = [
    { key: 'defaultHeap', label: '', env: {} },
    { key: 'maxOldSpace128', label: ' (--max-old-space-size=128)', env: { NODE_OPTIONS: '--max-old-space-size=128' } },
  ];
  const floorS = limitFloorSeconds(INSTALLED_INTO);
  const results: Record<string, unknown> = { limitFloorSeconds: floorS };
  const figures: Figure[] = [];
  const rows: Record<string, string | number>[] = [];
  for (const [i, variant] of variants.entries()) {
    const ns = `bench-firststart-${i}`;
    const fixture = await deployedFleet(ctx, ns, INSTALLED_INTO);
    const tracker = await trackRecorded(ctx, ns);
    const mark = ctx.audit.mark();
    const h = new HrtoProcess(ctx.cp.kubeconfigPath, [`--watch-namespaces=${ns}`], { env: variant.env });
    try {
      await h.start();
      const sampler = new RssSampler(h.pid, 50);
      const readyMs = await h.ready();
      const doneAt = await tracker.waitFor(INSTALLED_INTO, 600_000);
      const cpu = cpuSeconds(h.pid);
      const peak = sampler.stop();
      const digestedS = (doneAt - h.startedPerf) / 1000;
      await sleep(1500);
      const events = ctx.audit.since(mark).filter((e) => e.objectRef?.namespace === ns);
      const forced = events.filter((e) => isReleasePatch(e) && byHrto(e)).length;
      const sourcePatches = events.filter((e) => e.verb === 'patch' && e.objectRef?.resource === 'configmaps' && byHrto(e)).length;
      const eventWrites = events.filter((e) => e.objectRef?.resource === 'events').length;
      results[variant.key] = {
        namespace: ns,
        env: variant.env,
        fixture,
        readyMs,
        forcedUpgrades: forced,
        allDigestedSeconds: Number(digestedS.toFixed(2)),
        cpuSeconds: Number(cpu.toFixed(2)),
        peakRssMiB: mib(peak.maxMiB),
        peakRssHwmMiB: peak.hwmMiB === undefined ? undefined : mib(peak.hwmMiB),
        hrtoSourcePatches: sourcePatches,
        eventWrites,
      };
      rows.push({ hrto: `defaults${variant.label}`, 'forced upgrades': forced, 'all digested s': digestedS.toFixed(2), 'CPU s': cpu.toFixed(2), 'peak RSS MiB': mib(peak.maxMiB), 'VmHWM MiB': peak.hwmMiB === undefined ? '-' : mib(peak.hwmMiB), 'source patches': sourcePatches, 'Event writes': eventWrites });
      const label = `installed into ${INSTALLED_INTO.toLocaleString('en')} deployed releases${variant.label}`;
      figures.push(
        figure('firststart', `${label}: forced upgrades`, forced, 'count', { baseline: { value: INSTALLED_INTO, what: GO }, goal: { max: 0 }, original: '1,000' }),
        figure('firststart', `${label}: time until every source is digested`, digestedS, 's', { baseline: { value: 11, what: GO }, goal: { max: floorS + 2 }, original: '11 s' }),
        figure('firststart', `${label}: CPU`, cpu, 's', { baseline: { value: 9.1, what: GO }, goal: { max: 3 }, original: '9.1 s' }),
        figure('firststart', `${label}: peak RSS`, peak.maxMiB, 'MiB', { baseline: { value: 85, what: GO }, goal: { max: 90 }, original: '85 MiB' }),
      );
    } finally {
      tracker.stop();
      await h.stop();
      await cleanup(ctx, ns);
    }
  }
  say(`firststart 1: hrto started on ${INSTALLED_INTO} deployed HelmReleases (deployed after their labeled sources were written); from spawn until every source carries its digest; the client-side limit's floor for ${INSTALLED_INTO} patches is ${floorS.toFixed(1)} s`);
  table(rows);
  return { results, figures };
}

/** Part 2: 10,000 + 10,000 first starts, each adopting every source. */
async function coldCluster(ctx: Ctx): Promise<{ results: Record<string, unknown>; figures: Figure[]; versus: Versus[] }> {
  const ns = 'bench-firststart-cold';
  const ops = compared(ctx);
  const hrto = ops[0]!;
  const t0 = Date.now();
  const names = await namespaceWithPairs(ctx, ns, COLD, { workload: hrto.workload });
  const createdMs = Date.now() - t0;
  const runs: { key: string; label: string; op: Operator; args: string[] }[] = [
    { key: 'default', label: `hrto, default limit (--kube-api-qps=${DEFAULTS.kubeApiQps} --kube-api-burst=${DEFAULTS.kubeApiBurst})`, op: hrto, args: [] },
    { key: 'unlimited', label: 'hrto, unlimited (--kube-api-qps=0)', op: hrto, args: ['--kube-api-qps=0'] },
    ...ops.slice(1).map((op) => ({ key: op.id, label: op.label, op, args: [] })),
  ];
  const results: Record<string, unknown> = { helmReleases: names.length, sources: names.length, fixtureCreatedInMs: createdMs };
  const rows: Record<string, string | number>[] = [];
  const settledBy = new Map<string, { rssMiB: number; hwmMiB: number }>();
  try {
    for (const [i, run] of runs.entries()) {
      if (i > 0) await forgetDigests(ctx, ns, names, run.op);
      const tracker = await trackRecorded(ctx, ns, run.op);
      const mark = ctx.audit.mark();
      const h = run.op.process(ctx, run.args);
      try {
        await h.start();
        const readyMs = await h.ready();
        const adoptedMs = Math.round((await tracker.waitFor(names.length, 900_000)) - h.startedPerf);
        const adopted = memory(h.pid);
        const settled = await settledMemory(h);
        settledBy.set(run.key, settled);
        const writes = ctx.audit.since(mark).filter((e) => run.op.sent(e) && e.objectRef?.namespace === ns && e.verb !== 'list' && e.verb !== 'watch');
        const patches = writes.filter((e) => e.verb === 'patch' && e.objectRef?.resource === 'configmaps').length;
        const events = writes.filter((e) => e.objectRef?.resource === 'events').length;
        results[run.key] = { readyMs, allAdoptedMs: adoptedMs, digestPatches: patches, events, adoptedRssMiB: mib(adopted.rssMiB), settledRssMiB: settled.rssMiB, peakRssMiB: settled.hwmMiB };
        rows.push(
          byOperator(ctx, run.op, {
            run: run.label,
            'ready s': (readyMs / 1000).toFixed(1),
            'all adopted s': (adoptedMs / 1000).toFixed(1),
            'digest patches': patches,
            Events: events,
            'RSS adopted / settled MiB': `${mib(adopted.rssMiB)} / ${settled.rssMiB}`,
            'peak MiB': settled.hwmMiB,
          }),
        );
      } finally {
        tracker.stop();
        await h.stop();
      }
    }
  } finally {
    await cleanup(ctx, ns);
  }
  say(`firststart 2: ${COLD.toLocaleString('en')} HelmReleases and ${COLD.toLocaleString('en')} labeled sources, cluster-wide, first start (every source adopted); writes from the audit log, RSS from /proc (settled: 10 s after the last adoption)`);
  table(rows);
  const hrtoSettled = settledBy.get('default')!;
  const figures: Figure[] = [
    figure('firststart', `RSS with ${COLD.toLocaleString('en')} watched sources + ${COLD.toLocaleString('en')} HelmReleases, all adopted, settled`, hrtoSettled.rssMiB, 'MiB', { goal: { max: 120 }, original: '385 MiB at 2,000 + 2,000' }),
  ];
  const original = settledBy.get('original');
  const versusRows = original
    ? [
        versus('firststart', `RSS settled: ${COLD} + ${COLD}, all adopted`, 'MiB', original.rssMiB, hrtoSettled.rssMiB),
        versus('firststart', `peak RSS from start: ${COLD} + ${COLD}`, 'MiB', original.hwmMiB, hrtoSettled.hwmMiB),
      ]
    : [];
  return { results, figures, versus: versusRows };
}

/**
 * `n` labeled sources (named in an annotation, as users write them) and `n` HelmReleases whose
 * status says helm-controller deployed them after the sources were written (markDeployed).
 */
async function deployedFleet(ctx: Ctx, ns: string, n: number): Promise<Record<string, unknown>> {
  await createNamespace(ctx, ns);
  const names = Array.from({ length: n }, (_, i) => `r${i}`);
  const t0 = Date.now();
  await inBatches(names, 64, (name) =>
    ctx.kube.request('POST', `/api/v1/namespaces/${ns}/configmaps`, {
      query: { fieldManager: BENCH_MANAGER },
      body: { metadata: { name, namespace: ns, labels: { [WATCH]: 'true' }, annotations: { [NAMES]: name, [NAMESPACE]: ns } }, data: { 'values.yaml': `replicas: 2\nname: ${name}\n` } },
    }),
  );
  const sourcesWrittenAt = Date.now();
  await inBatches(names, 64, (name) => ctx.kube.request('POST', `${HR_API}/namespaces/${ns}/helmreleases`, { body: helmRelease(ns, name) }));
  const deployed = await markDeployed(ctx, ns, names, sourcesWrittenAt);
  return { releases: n, sourcesWrittenAt: new Date(sourcesWrittenAt).toISOString(), deployedAt: deployed, createdInMs: Date.now() - t0 };
}

/** Removes the digests `op` keeps on the sources, so the next start adopts every source again. */
async function forgetDigests(ctx: Ctx, ns: string, names: readonly string[], op: Operator): Promise<void> {
  const annotations = { [op.workload.keys.digest]: null, [keysFor(op.workload.domain).keyDigests]: null };
  await inBatches(names, 64, (name) =>
    ctx.kube.request('PATCH', `/api/v1/namespaces/${ns}/configmaps/${name}`, { contentType: MERGE_PATCH, body: { metadata: { annotations } } }),
  );
  await until('the digests removed', async () => (await recordedCount(ctx, ns, op)) === 0);
}
