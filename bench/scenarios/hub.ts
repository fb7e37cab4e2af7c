// A hub under a rollout plan (issue 33's cost): 2,000 HelmReleases in one namespace, as a hub holds
// one per cluster, all reading one ConfigMap whose plan has three rings (canary 20, ring a 980, ring
// b 1,000 with maxUpdate 10%). helm-controller is simulated by status writes. Measured from /proc and
// the audit log, hrto built and run as in the other scenarios (UNTHROTTLED):
//   1. a change: the canary ring triggered and the 1,980 others held (suspended), CPU and time;
//   2. the canary reported upgraded and healthy: after its 5 s bake, ring a triggered, CPU and time;
//   3. nothing changing while ring b is held and ring a upgrades: CPU over 30 s;
// and RSS settled before the change and at its peak.
import { contentDigest } from '../../src/digest.js';
import { byHrto, isReleasePatch } from '../audit.js';
import { type Figure, figure } from '../figures.js';
import { HrtoProcess } from '../hrto.js';
import { MERGE_PATCH, type RawObject } from '../kube.js';
import { cleanup, type Ctx, createNamespace, HR_API, helmRelease, inBatches, markDeployed, mib, REQUESTED_AT, say, type ScenarioResult, sleep, table, until, UNTHROTTLED, WATCH, writeSource } from '../lib.js';
import { cpuSeconds, memory, RssSampler } from '../proc.js';

const NS = 'bench-hub';
const SOURCE = 'platform';
const RINGS = [
  ['canary', 20],
  ['a', 980],
  ['b', 1000],
] as const;
const PLAN = JSON.stringify({
  steps: [
    { name: 'canary', selector: 'ring=canary', bake: '5s' },
    { name: 'ring-a', selector: 'ring=a' },
    { name: 'ring-b', selector: 'ring=b', maxUpdate: '10%' },
  ],
});
const RELEASES = RINGS.reduce((n, [, count]) => n + count, 0);
const HOLD = 'uburro.github.com/suspended-by';

interface Seen {
  ring: string;
  requestedAt: string | undefined;
  suspend: boolean;
  generation: number;
}

export const hubScenarios: Record<string, (ctx: Ctx) => Promise<ScenarioResult>> = {
  async hub(ctx) {
    await createNamespace(ctx, NS);
    const members = RINGS.flatMap(([ring, count]) => Array.from({ length: count }, (_, i) => ({ name: `${ring}-${i}`, ring })));
    await ctx.kube.request('POST', `/api/v1/namespaces/${NS}/configmaps`, {
      body: { metadata: { name: SOURCE, namespace: NS, labels: { [WATCH]: 'true' }, annotations: { 'uburro.github.com/rollout-plan': PLAN } }, data: { 'values.yaml': 'v: 0\n' } },
    });
    const written = Date.now();
    await inBatches(members, 64, ({ name, ring }) => {
      const body = helmRelease(NS, name, { valuesFrom: [{ kind: 'ConfigMap', name: SOURCE }] });
      body.metadata = { ...body.metadata, labels: { ring } };
      return ctx.kube.request('POST', `${HR_API}/namespaces/${NS}/helmreleases`, { body });
    });
    await markDeployed(ctx, NS, members.map((m) => m.name), written);

    const seen = new Map<string, Seen>();
    const watch = await ctx.kube.informer(`${HR_API}/namespaces/${NS}/helmreleases`, {}, (_type, obj: RawObject) => {
      const meta = obj.metadata ?? {};
      seen.set(meta.name ?? '', {
        ring: meta.labels?.ring ?? '',
        requestedAt: meta.annotations?.[REQUESTED_AT],
        suspend: (obj.spec as { suspend?: boolean } | undefined)?.suspend === true && meta.annotations?.[HOLD] !== undefined,
        generation: (meta as { generation?: number }).generation ?? 0,
      });
    });
    const h = new HrtoProcess(ctx.cp.kubeconfigPath, [`--watch-namespaces=${NS}`, ...UNTHROTTLED]);
    try {
      await h.start();
      await h.ready();
      const recorded = async (): Promise<boolean> => {
        const cm = await ctx.kube.request('GET', `/api/v1/namespaces/${NS}/configmaps/${SOURCE}`);
        return cm.metadata?.annotations?.['uburro.github.com/config-digest'] === contentDigest({ data: cm.data });
      };
      await until('the platform ConfigMap adopted', recorded);
      await sleep(10_000);
      const settled = memory(h.pid);
      const count = (ring: string, match: (s: Seen) => boolean): number => [...seen.values()].filter((s) => s.ring === ring && match(s)).length;
      const base = new Map([...seen].map(([name, s]) => [name, s.requestedAt]));
      const triggered = (name: string): boolean => seen.get(name)?.requestedAt !== base.get(name);

      // 1. The change: the canary ring goes, every other ring is held.
      const sampler = new RssSampler(h.pid);
      const mark = ctx.audit.mark();
      const cpu0 = cpuSeconds(h.pid);
      const t0 = performance.now();
      await writeSource(ctx, NS, SOURCE, 'v: 1\n');
      await until('the canary triggered and the other rings held', () =>
        Promise.resolve(members.every((m) => (m.ring === 'canary' ? triggered(m.name) : seen.get(m.name)?.suspend === true))),
      );
      const held = { cpu: cpuSeconds(h.pid) - cpu0, ms: performance.now() - t0 };

      // 2. The canary upgraded and healthy (as helm-controller reports it): ring a after the bake.
      const cpu1 = cpuSeconds(h.pid);
      const t1 = performance.now();
      const deployed = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      const config = `sha256:${'c'.repeat(64)}`;
      await inBatches(
        members.filter((m) => m.ring === 'canary'),
        20,
        async ({ name }) => {
          const s = seen.get(name)!;
          await ctx.kube.request('PATCH', `${HR_API}/namespaces/${NS}/helmreleases/${name}/status`, {
            contentType: MERGE_PATCH,
            body: {
              status: {
                lastHandledReconcileAt: s.requestedAt,
                lastAttemptedConfigDigest: config,
                history: [
                  { name, namespace: NS, version: 2, chartName: 'c', chartVersion: '1.0.0', configDigest: config, digest: config, firstDeployed: deployed, lastDeployed: deployed, status: 'deployed', action: 'upgrade' },
                ],
                conditions: [{ type: 'Ready', status: 'True', reason: 'UpgradeSucceeded', message: 'ok', lastTransitionTime: deployed, observedGeneration: s.generation }],
              },
            },
          });
        },
      );
      await until('ring a triggered', () => Promise.resolve(count('a', (s) => s.requestedAt !== undefined && !s.suspend) === 980 && members.filter((m) => m.ring === 'a').every((m) => triggered(m.name))));
      const ringA = { cpu: cpuSeconds(h.pid) - cpu1, ms: performance.now() - t1 };

      // 3. Ring a upgrading (no status comes), ring b held: nothing to do.
      await sleep(2_000);
      const cpu2 = cpuSeconds(h.pid);
      const t2 = performance.now();
      await sleep(30_000);
      const quietPercent = ((cpuSeconds(h.pid) - cpu2) / ((performance.now() - t2) / 1000)) * 100;
      sampler.stop();
      const ringBTriggered = members.filter((m) => m.ring === 'b' && triggered(m.name)).length;
      const patches = ctx.audit.since(mark).filter((e) => isReleasePatch(e) && byHrto(e) && e.objectRef?.namespace === NS).length;
      const result = {
        releases: RELEASES,
        settledRssMiB: mib(settled.rssMiB),
        peakRssMiB: mib(sampler.max),
        holdCpuSeconds: Number(held.cpu.toFixed(2)),
        holdSeconds: Number((held.ms / 1000).toFixed(2)),
        ringACpuSeconds: Number(ringA.cpu.toFixed(2)),
        ringASeconds: Number((ringA.ms / 1000).toFixed(2)),
        quietPercentOfOneCore: Number(quietPercent.toFixed(3)),
        releasePatches: patches,
        ringBTriggered,
      };
      if (ringBTriggered > 0) throw new Error(`bench: ${ringBTriggered} releases of ring b were triggered while ring a has not upgraded`);
      say(`hub: ${RELEASES.toLocaleString('en')} HelmReleases in one namespace reading one ConfigMap with a three-ring plan (20, 980, 1,000 at maxUpdate 10%); ${UNTHROTTLED.join(' ')}`);
      table([
        { step: 'change: canary triggered, 1,980 held', 'CPU s': result.holdCpuSeconds, 'wall s': result.holdSeconds },
        { step: 'canary healthy: 5 s bake, then ring a (980) triggered', 'CPU s': result.ringACpuSeconds, 'wall s': result.ringASeconds },
        { step: 'ring a upgrading, ring b held, 30 s', 'CPU s': '-', 'wall s': `${result.quietPercentOfOneCore} % of one core` },
      ]);
      say(`  RSS settled ${result.settledRssMiB} MiB before the change, peak ${result.peakRssMiB} MiB; hrto's HelmRelease patches: ${patches} (1,980 holds + 1,000 triggers)`);
      const figures: Figure[] = [
        figure('hub', 'hub of 2,000 releases under a plan: a change held on 1,980 and the canary triggered (CPU)', held.cpu, 's'),
        figure('hub', 'the same, wall time from the ConfigMap write', held.ms / 1000, 's'),
        figure('hub', 'the canary healthy: ring a (980) triggered after a 5 s bake (CPU)', ringA.cpu, 's'),
        figure('hub', 'CPU while 1,000 are held and 980 upgrade, nothing changing', quietPercent, '%'),
        figure('hub', 'RSS with 2,000 releases under a plan, settled', settled.rssMiB, 'MiB'),
        figure('hub', 'peak RSS through the rollout', sampler.max, 'MiB'),
      ];
      return { ...result, figures };
    } finally {
      watch.stop();
      await h.stop();
      await cleanup(ctx, NS);
    }
  },
};
