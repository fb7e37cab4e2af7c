// Issue 12's figures: hrto's runtime cost beside a floor measured in the same run or the original Go
// operator's figure from the issue. Memory and CPU come from /proc/<pid> (bench/proc.ts), reaction
// times from the API server's audit log (bench/audit.ts). With the Go original as a peer
// (HRTO_BENCH_GO_PEER), idle, memory, reaction and cpu measure it too, after hrto (bench/operators.ts).
import { spawn } from 'node:child_process';
import { type AuditEvent, fieldManagerOf, isReleasePatch, operatorWrites, reactionTimes } from '../audit.js';
import { figure, type Figure, type Versus, versus } from '../figures.js';
import { HrtoProcess } from '../hrto.js';
import { DEFAULT_WORKLOAD, HRTO, nodeFloorOn, type Operator, type OperatorProcess } from '../operators.js';
import {
  BENCH_MANAGER,
  byOperator,
  compared,
  type Ctx,
  cleanup,
  clientLatencies,
  clusterWatched,
  createNamespace,
  filler,
  GO,
  IDLE_SETTLE_MS,
  inBatches,
  mib,
  namespaceWithPairs,
  pacedWrites,
  percentiles,
  say,
  type ScenarioResult,
  settledMemory,
  sleep,
  table,
  trackRecorded,
  type Tracker,
  triggerRelease,
  until,
  watchTriggers,
  withAdoptedPairs,
  writeSource,
  UNTHROTTLED,
  type Write,
} from '../lib.js';
import { cpuSeconds, mainThreadCpuSeconds, memory, RssSampler } from '../proc.js';


/** CPU-seconds a process used over `windowMs`, and that as a % of one core. */
async function cpuOver(pid: number, windowMs: number): Promise<{ cpu: number; elapsed: number; percent: number }> {
  const cpu0 = cpuSeconds(pid);
  const t0 = performance.now();
  await sleep(windowMs);
  const cpu = cpuSeconds(pid) - cpu0;
  const elapsed = (performance.now() - t0) / 1000;
  return { cpu, elapsed, percent: (cpu / elapsed) * 100 };
}

type IdleFigures = { readyMs: number; rssMiB: number; hwmMiB: number; anonMiB: number; fileMiB: number; cpuS: number };

/** RssAnon / RssFile, as the tables and results show them. */
const anonFile = (anonMiB: number, fileMiB: number): string => `${anonMiB} / ${fileMiB}`;

const idleRow = (f: IdleFigures) => ({ 'RSS MiB': f.rssMiB, 'anon / file MiB': anonFile(f.anonMiB, f.fileMiB), 'peak MiB': f.hwmMiB, 'ready ms': f.readyMs as number | string });

/** Starts `h`; its time to ready, then its settled RSS, start-up peak and CPU over the settling. */
async function idleFigures(h: OperatorProcess): Promise<IdleFigures> {
  await h.start();
  const readyMs = await h.ready();
  const cpu0 = cpuSeconds(h.pid);
  const settled = await settledMemory(h);
  return { readyMs, ...settled, cpuS: cpuSeconds(h.pid) - cpu0 };
}

/** `measure(h)`, then `h` stopped whatever happens. */
async function stopAfter<P extends OperatorProcess, T>(h: P, measure: (h: P) => Promise<T>): Promise<T> {
  try {
    return await measure(h);
  } finally {
    await h.stop();
  }
}

export const runtimeScenarios: Record<string, (ctx: Ctx) => Promise<ScenarioResult>> = {
  async idle(ctx) {
    const cluster = await clusterWatched(ctx);
    // The floor: a bare Node.js process of the same binary, doing nothing.
    const bare = spawn(process.execPath, ['-e', 'setInterval(()=>{},1000)'], { stdio: 'ignore' });
    let bareMiB: number;
    let bareSplit: string;
    try {
      await sleep(IDLE_SETTLE_MS);
      const m = memory(bare.pid!);
      bareMiB = mib(m.rssMiB);
      bareSplit = anonFile(mib(m.anonMiB), mib(m.fileMiB));
    } finally {
      const exited = new Promise((r) => bare.once('exit', r));
      bare.kill('SIGTERM');
      await exited;
    }
    // hrto as installed: the whole cluster, default flags; then the same with a kubeconfig (a
    // workstation, or the bench's old way: its reader is a worker thread), started beside it.
    const h = new HrtoProcess(ctx.cp.kubeconfigPath, []);
    let settled: IdleFigures;
    let withKubeconfig: IdleFigures;
    try {
      settled = await idleFigures(h);
      withKubeconfig = await stopAfter(new HrtoProcess(ctx.cp.kubeconfigPath, [], { credentials: 'kubeconfig' }), idleFigures);
    } finally {
      await h.stop();
    }
    // The Go original (a kubeconfig: it has no in-cluster path outside a pod), alone.
    const original = ctx.peer ? await stopAfter(ctx.peer.process(ctx), idleFigures) : undefined;
    // Node.js with what any client of the API server holds: TLS, HTTP and two watches (bench/floor.ts).
    const floor = await stopAfter(nodeFloorOn(DEFAULT_WORKLOAD).process(ctx, ['--watch-namespaces=default']), idleFigures);
    const result = {
      cluster,
      bareNodeRssMiB: bareMiB,
      nodeFloorRssMiB: floor.rssMiB,
      anonFileMiB: {
        bare: bareSplit,
        floor: anonFile(floor.anonMiB, floor.fileMiB),
        hrto: anonFile(settled.anonMiB, settled.fileMiB),
        ...(original ? { original: anonFile(original.anonMiB, original.fileMiB) } : {}),
      },
      hrtoRssMiB: settled.rssMiB,
      hrtoPeakRssMiB: settled.hwmMiB,
      withKubeconfig: { rssMiB: withKubeconfig.rssMiB, peakRssMiB: withKubeconfig.hwmMiB },
      readyMs: settled.readyMs,
      cpuSecondsOver10sIdle: Number(settled.cpuS.toFixed(2)),
      ...(original ? { original: { rssMiB: original.rssMiB, peakRssMiB: original.hwmMiB, cpuSecondsOver10sIdle: Number(original.cpuS.toFixed(2)) } } : {}),
    };
    const figures: Figure[] = [
      figure('idle', 'RSS, idle, empty cluster (in-cluster credentials)', settled.rssMiB, 'MiB', { baseline: { value: bareMiB, what: 'bare node, this run' }, goal: { max: 64 }, original: '60 MiB' }),
      figure('idle', 'RSS, idle, empty cluster (kubeconfig)', withKubeconfig.rssMiB, 'MiB', { baseline: { value: bareMiB, what: 'bare node, this run' }, goal: { max: 64 }, original: '60 MiB' }),
      figure('idle', 'RSS, idle: Node.js floor (TLS, HTTP, 2 watches; bench/floor.ts)', floor.rssMiB, 'MiB', { baseline: { value: bareMiB, what: 'bare node, this run' } }),
    ];
    say(`idle: VmRSS ${IDLE_SETTLE_MS / 1000} s after start, empty cluster (${JSON.stringify(cluster)})`);
    table([
      { process: 'bare node -e "setInterval(()=>{},1000)"', 'RSS MiB': bareMiB, 'anon / file MiB': bareSplit, 'peak MiB': '-', 'ready ms': '-' },
      { process: 'Node.js floor: TLS, HTTP and 2 watches, in-cluster credentials (bench/floor.ts)', ...idleRow(floor) },
      { process: 'hrto (cluster-wide, defaults, in-cluster credentials)', ...idleRow(settled) },
      { process: 'hrto (the same, with a kubeconfig)', ...idleRow(withKubeconfig), 'ready ms': '-' },
      ...(original ? [{ process: 'original (Go), kubeconfig (ready: its lists done, per the audit log)', ...idleRow(original) }] : []),
    ]);
    say(`  hrto / bare node = ${(settled.rssMiB / bareMiB).toFixed(2)}x; hrto / goal 64 MiB = ${(settled.rssMiB / 64).toFixed(2)}x`);
    const versusRows = original
      ? [
          versus('idle', 'RSS, idle, empty cluster (hrto in-cluster; Go with a kubeconfig)', 'MiB', original.rssMiB, settled.rssMiB),
          versus('idle', 'RSS, idle, empty cluster (both with a kubeconfig)', 'MiB', original.rssMiB, withKubeconfig.rssMiB),
          versus('idle', 'peak RSS from start to 10 s idle (hrto in-cluster)', 'MiB', original.hwmMiB, settled.hwmMiB),
          versus('idle', 'CPU over 10 s idle (hrto in-cluster)', 's', original.cpuS, settled.cpuS),
        ]
      : undefined;
    return { ...result, figures, ...(versusRows ? { versus: versusRows } : {}) };
  },

  async memory(ctx) {
    const ns = 'bench-memory';
    await createNamespace(ctx, ns);
    const rows: Record<string, string | number>[] = [];
    const measurements: Record<string, unknown>[] = [];
    const ops = compared(ctx);
    // Each measurement: a fresh cluster-wide hrto with default flags (then the Go original, with a
    // peer), VmRSS once settled (IDLE_SETTLE_MS idle), and its peak since start (VmHWM). The same
    // with 10,000 watched sources and releases is firststart's.
    const measureOne = async (op: Operator, label: string) => {
      const h = op.process(ctx, []);
      try {
        await h.start();
        const readyMs = await h.ready();
        const m = await settledMemory(h);
        rows.push(byOperator(ctx, op, { cluster: label, 'RSS MiB': m.rssMiB, 'peak MiB': m.hwmMiB, 'ready ms': readyMs }));
        measurements.push(byOperator(ctx, op, { cluster: label, rssMiB: m.rssMiB, peakRssMiB: m.hwmMiB, readyMs }));
        return m;
      } finally {
        await h.stop();
      }
    };
    const versusRows: Versus[] = [];
    /** hrto's settled RSS on this cluster (the Go original's beside it, with a peer). */
    const measure = async (label: string) => {
      const byOp = new Map<string, { rssMiB: number; hwmMiB: number }>();
      for (const op of ops) byOp.set(op.id, await measureOne(op, label));
      const hrto = byOp.get('hrto')!;
      const original = byOp.get('original');
      if (original) versusRows.push(versus('memory', `RSS settled: ${label}`, 'MiB', original.rssMiB, hrto.rssMiB), versus('memory', `peak RSS from start: ${label}`, 'MiB', original.hwmMiB, hrto.hwmMiB));
      return hrto.rssMiB;
    };
    let created = 0;
    const value = filler(4096, 0);
    const secretValue = Buffer.from(value).toString('base64');
    const grow = async (total: number) => {
      const todo = Array.from({ length: total - created }, (_, i) => created + i);
      const t0 = Date.now();
      await inBatches(todo, 96, (i) =>
        i % 2 === 0
          ? ctx.kube.request('POST', `/api/v1/namespaces/${ns}/configmaps`, { body: { metadata: { name: `u${i}` }, data: { 'values.yaml': value } } })
          : ctx.kube.request('POST', `/api/v1/namespaces/${ns}/secrets`, { body: { metadata: { name: `u${i}` }, data: { token: secretValue } } }),
      );
      say(`  created ${todo.length} unlabeled 4 KiB ConfigMaps/Secrets in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
      created = total;
    };
    try {
      const idle = await measure('0 unlabeled');
      await grow(10_000);
      await measure('10,000 unlabeled 4 KiB ConfigMaps and Secrets');
      await grow(50_000);
      const unlabeled = await measure('50,000 unlabeled 4 KiB ConfigMaps and Secrets');
      const base = { value: idle, what: "hrto's own idle, this scenario" };
      const figures: Figure[] = [
        figure('memory', 'RSS with 50,000 unlabeled 4 KiB ConfigMaps/Secrets', unlabeled, 'MiB', { baseline: base, goal: { maxRatio: 1.15 }, original: '311 MiB at 20,000 (peak 391)' }),
      ];
      say(`memory: ${ops.map((op) => op.label).join(' and ')} VmRSS (cluster-wide, defaults), settled; peak = VmHWM since start`);
      table(rows);
      return { measurements, figures, ...(ctx.peer ? { versus: versusRows } : {}) };
    } finally {
      await cleanup(ctx, ns);
    }
  },

  async reaction(ctx) {
    const ns = 'bench-reaction';
    const ops = compared(ctx);
    const { keys } = ops[0]!.workload;
    const names = await namespaceWithPairs(ctx, ns, 50, { workload: ops[0]!.workload });
    const watch = await watchTriggers(ctx, ns);
    const waitSeen = (writes: Write[], what: string) => until(what, () => Promise.resolve(clientLatencies(writes, watch.seen).unmatched === 0 || undefined), 120_000).catch(() => undefined);
    try {
      // 1. hrto (then the Go original, with a peer), one after the other on the same pairs.
      const runs: ReactionRun[] = [];
      for (const op of ops) runs.push(await reactionRun(ctx, ns, names, op, waitSeen));
      const hrto = runs[0]!;
      const original = runs.find((run) => run.op.id === 'original');

      // 2. The client-side floor (no operator): on each write's response the bench itself patches
      // the HelmRelease as hrto would, and the same watch sees it.
      const floorManager = `${BENCH_MANAGER}-floor`;
      const floorWrites = await pacedWrites(ctx, ns, names, REACTION_CHANGES, REACTION_RATE, 'floor', (w) => triggerRelease(ctx, ns, w.name, new Date().toISOString(), floorManager));
      await waitSeen(floorWrites, 'every floor trigger seen');

      // 3. The reaction floor: a minimal watch -> PATCH operator inside the bench (one watch on the
      // labeled ConfigMaps, a merge patch on every content change, nothing else).
      const watchFloorManager = `${BENCH_MANAGER}-watch-floor`;
      const lastValues = new Map<string, string | undefined>();
      const cmWatch = await ctx.kube.informer(`/api/v1/namespaces/${ns}/configmaps`, { labelSelector: `${keys.watch}=true` }, (type, obj) => {
        const name = obj.metadata?.name ?? '';
        const values = obj.data?.['values.yaml'];
        const before = lastValues.get(name);
        lastValues.set(name, values);
        if (type === 'MODIFIED' && before !== undefined && before !== values) void triggerRelease(ctx, ns, name, new Date().toISOString(), watchFloorManager).catch(() => undefined);
      });
      await sleep(500);
      const markWatchFloor = ctx.audit.mark();
      const watchFloorWrites = await pacedWrites(ctx, ns, names, REACTION_CHANGES, REACTION_RATE, 'watchfloor');
      await waitSeen(watchFloorWrites, 'every watch-floor trigger seen');
      cmWatch.stop();
      await sleep(1500);
      const watchFloorEvents = ctx.audit.since(markWatchFloor);

      const reactionFloor = reactionTimes(watchFloorEvents, ns, BENCH_MANAGER, (e) => fieldManagerOf(e) === watchFloorManager);
      const rf = percentiles(reactionFloor.ms);
      const floorClient = clientLatencies(floorWrites, watch.seen);
      const watchFloorClient = clientLatencies(watchFloorWrites, watch.seen);
      const cf = percentiles(floorClient.latencies);
      const cwf = percentiles(watchFloorClient.latencies);
      const figuresOf = (run: ReactionRun) => {
        const reaction = reactionTimes(run.events, ns, BENCH_MANAGER, run.op.sent);
        const client = clientLatencies(run.writes, watch.seen);
        return { reaction, r: percentiles(reaction.ms), client, c: percentiles(client.latencies), triggers: run.events.filter((e) => isReleasePatch(e) && e.objectRef?.namespace === ns && run.op.sent(e)), writes: operatorWrites(run.events, ns, run.op.sent) };
      };
      const h = figuresOf(hrto);
      const { reaction, r, c } = h;
      const g = original && figuresOf(original);
      const result = {
        changes: REACTION_CHANGES,
        ratePerSecond: REACTION_RATE,
        settings: UNTHROTTLED.join(' '),
        reactionMs: {
          hrto: { ...r, writes: reaction.writes, unmatched: reaction.unmatched, triggeredBeforeWriteCompleted: reaction.early },
          watchFloor: { ...rf, unmatched: reactionFloor.unmatched, triggeredBeforeWriteCompleted: reactionFloor.early },
          // Matching only triggers received after the write's ResponseComplete (see reactionTimes).
          strictRule: { hrto: { ...percentiles(reaction.strictRule.ms), unmatched: reaction.strictRule.unmatched }, watchFloor: { ...percentiles(reactionFloor.strictRule.ms), unmatched: reactionFloor.strictRule.unmatched } },
        },
        clientMs: { hrto: { ...c, unmatched: h.client.unmatched }, floor: { ...cf, unmatched: floorClient.unmatched }, watchFloor: { ...cwf, unmatched: watchFloorClient.unmatched } },
        // Steady slowness or a backlog that builds up: the median of each successive 100 writes.
        hrtoReactionP50By100Writes: Array.from({ length: Math.ceil(reaction.ms.length / 100) }, (_, k) => percentiles(reaction.ms.slice(k * 100, k * 100 + 100)).p50),
        hrtoMinusFloorP50Ms: Number((c.p50 - cf.p50).toFixed(3)),
        hrtoTriggerPatches: h.triggers.length,
        hrtoUserAgents: [...new Set(h.triggers.map((e) => e.userAgent ?? ''))],
        ...(g
          ? {
              workload: `${keys.watch} sources, deployed releases`,
              hrtoWrites: h.writes,
              original: {
                reactionMs: { ...g.r, writes: g.reaction.writes, unmatched: g.reaction.unmatched, triggeredBeforeWriteCompleted: g.reaction.early, strictRule: { ...percentiles(g.reaction.strictRule.ms), unmatched: g.reaction.strictRule.unmatched } },
                clientMs: { ...g.c, unmatched: g.client.unmatched },
                triggerPatches: g.triggers.length,
                userAgents: [...new Set(g.triggers.map((e) => e.userAgent ?? ''))],
                writes: g.writes,
              },
            }
          : {}),
      };
      const watchFloor = 'watch->PATCH floor, this run';
      const floor = 'write+PATCH floor, this run';
      const figures: Figure[] = [
        figure('reaction', 'reaction p50: CM write completed -> HR PATCH received (audit)', r.p50, 'ms', { baseline: { value: rf.p50, what: watchFloor }, goal: { max: 2.5 }, original: 'p50 1.9 ms' }),
        figure('reaction', 'reaction p90 (audit)', r.p90, 'ms', { baseline: { value: rf.p90, what: watchFloor }, original: 'p90 2.7 ms' }),
        figure('reaction', 'reaction p99 (audit)', r.p99, 'ms', { baseline: { value: rf.p99, what: watchFloor }, goal: { max: 10 } }),
        figure('reaction', 'reaction max (audit)', r.max, 'ms', { baseline: { value: rf.max, what: watchFloor } }),
        figure('reaction', 'client-side p50: write -> requestedAt seen on a watch', c.p50, 'ms', { baseline: { value: cf.p50, what: floor }, goal: { maxOver: 2 }, original: 'p50 12 ms (floor 11 ms)' }),
        figure('reaction', 'client-side p99', c.p99, 'ms', { baseline: { value: cf.p99, what: floor }, original: 'p99 17 ms' }),
      ];
      say(`reaction: ${REACTION_CHANGES} changes at ${REACTION_RATE}/s over ${names.length} source/HelmRelease pairs, ${UNTHROTTLED.join(' ')}${g ? `; the original (Go) has no such settings (${keys.watch} sources, deployed releases for both)` : ''}`);
      table([
        { measured: 'audit: write completed -> PATCH received, hrto', ...pcols(r), unmatched: reaction.unmatched, 'before write completed': reaction.early },
        ...(g ? [{ measured: 'audit: same, original (Go)', ...pcols(g.r), unmatched: g.reaction.unmatched, 'before write completed': g.reaction.early }] : []),
        { measured: 'audit: same, bench watch->PATCH floor', ...pcols(rf), unmatched: reactionFloor.unmatched, 'before write completed': reactionFloor.early },
        { measured: 'client: write response -> seen on watch, hrto', ...pcols(c), unmatched: h.client.unmatched, 'before write completed': '-' },
        ...(g ? [{ measured: 'client: same, original (Go)', ...pcols(g.c), unmatched: g.client.unmatched, 'before write completed': '-' }] : []),
        { measured: 'client: same, write+PATCH floor (no operator)', ...pcols(cf), unmatched: floorClient.unmatched, 'before write completed': '-' },
        { measured: 'client: same, bench watch->PATCH floor', ...pcols(cwf), unmatched: watchFloorClient.unmatched, 'before write completed': '-' },
      ]);
      say(`  hrto - floor at p50 (client-side): ${result.hrtoMinusFloorP50Ms} ms; hrto user agents: ${result.hrtoUserAgents.join(', ')}`);
      if (g) say(`  writes per trigger (audit): hrto ${h.writes.perTrigger} ${JSON.stringify(h.writes.byResource)}; original (Go) ${g.writes.perTrigger} ${JSON.stringify(g.writes.byResource)}; its user agents: ${result.original?.userAgents.join(', ')}`);
      const versusRows = g
        ? [
            versus('reaction', 'reaction p50: CM write completed -> HR PATCH received (audit)', 'ms', g.r.p50, r.p50),
            versus('reaction', 'reaction p90 (audit)', 'ms', g.r.p90, r.p90),
            versus('reaction', 'reaction p99 (audit)', 'ms', g.r.p99, r.p99),
            versus('reaction', 'client-side p50: write -> requestedAt seen on a watch', 'ms', g.c.p50, c.p50),
            versus('reaction', 'client-side p99', 'ms', g.c.p99, c.p99),
            versus('reaction', `triggers (HelmRelease patches) for ${REACTION_CHANGES} changes`, 'count', g.triggers.length, h.triggers.length),
            versus('reaction', 'writes per trigger (audit)', 'count', g.writes.perTrigger, h.writes.perTrigger),
          ]
        : undefined;
      return { ...result, figures, ...(versusRows ? { versus: versusRows } : {}) };
    } finally {
      watch.stop();
      await cleanup(ctx, ns);
    }
  },

  async cpu(ctx) {
    const runs: CpuRun[] = [];
    for (const op of compared(ctx)) runs.push(await cpuRun(ctx, op));
    const hrto = runs[0]!;
    const original = runs.find((run) => run.op.id === 'original');
    // What Node.js itself charges for the original's traffic on the same workload, then with hrto's
    // Event per trigger as well: hrto's excess over the second is its own work.
    const floor = await cpuRun(ctx, nodeFloorOn(hrto.op.workload));
    const floorEvents = await cpuRun(ctx, nodeFloorOn(hrto.op.workload, { events: true }));
    runs.push(floor, floorEvents);
    const result = { ...hrto.result, nodeFloor: floor.result, nodeFloorWithEvents: floorEvents.result };
    const figures: Figure[] = [
      figure('cpu', 'CPU for 1,000 changes over 100 releases', hrto.cpu, 's', { baseline: { value: 0.5, what: GO }, goal: { max: 0.6 }, original: '0.5 s' }),
      figure('cpu', 'CPU for the same burst again, same process', hrto.againCpu, 's', { baseline: { value: hrto.cpu, what: 'its first burst' } }),
      figure('cpu', 'peak RSS during that burst', hrto.peakMiB, 'MiB', { baseline: { value: 56, what: GO }, goal: { max: 80 }, original: '56 MiB' }),
      figure('cpu', 'CPU for those changes, Node.js floor (bench/floor.ts: 2 writes per trigger, nothing else)', floor.cpu, 's', { baseline: { value: hrto.cpu, what: 'hrto, this run' } }),
      figure('cpu', 'CPU for those changes, Node.js floor + a Triggered Event per trigger (hrto\'s 3 writes)', floorEvents.cpu, 's', { baseline: { value: hrto.cpu, what: 'hrto, this run' } }),
    ];
    say(`cpu: 1,000 changes over 100 releases (${UNTHROTTLED.join(' ')}${original ? '; the original (Go) has no such settings' : ''}), from adoption complete to every final state recorded`);
    table(
      runs.map(({ op, result: x }) => ({
        operator: op.label,
        'written in s': (x.writtenInMs / 1000).toFixed(1),
        'recorded in s': (x.allRecordedInMs / 1000).toFixed(1),
        'CPU s': x.cpuSeconds,
        'main thread s': x.mainThreadCpuSeconds ?? '-',
        'again: CPU s (main)': `${x.again.cpuSeconds} (${x.again.mainThreadCpuSeconds ?? '-'})`,
        'peak RSS MiB (50 ms samples)': x.peakRssMiB,
        'VmHWM MiB': x.peakRssHwmMiB ?? '-',
        'at the peak: anon / file MiB': anonFile(x.peakRssSplitMiB.anon, x.peakRssSplitMiB.file),
        triggers: x.triggers,
        'writes/trigger': x.writes.perTrigger,
        reconciles: x.reconciles ? Object.entries(x.reconciles).map(([q, n]) => `${q} ${n}`).join(', ') : '-',
      })),
    );
    say('  Node.js floor: bench/floor.ts, bare Node.js doing only what the original does per change (list+watch, digest, patch each release, patch the digest) with hrto\'s connections and flags; + Events: and a Triggered Event per trigger, as hrto writes');
    if (!original) return { ...result, figures };
    const g = original.result;
    say(`  writes per trigger (audit): hrto ${result.writes.perTrigger} ${JSON.stringify(result.writes.byResource)}; original (Go) ${g.writes.perTrigger} ${JSON.stringify(g.writes.byResource)}`);
    const versusRows = [
      versus('cpu', 'CPU for 1,000 changes over 100 releases', 's', g.cpuSeconds, result.cpuSeconds),
      versus('cpu', 'CPU for the same burst again, same process', 's', g.again.cpuSeconds, result.again.cpuSeconds),
      versus('cpu', 'peak RSS during that burst (50 ms samples)', 'MiB', g.peakRssMiB, result.peakRssMiB),
      versus('cpu', 'triggers for those 1,000 changes', 'count', g.triggers, result.triggers),
      versus('cpu', 'writes per trigger (audit)', 'count', g.writes.perTrigger, result.writes.perTrigger),
      versus('cpu', 'every final state recorded after the first write', 's', g.allRecordedInMs / 1000, result.allRecordedInMs / 1000),
    ];
    return { ...result, original: g, figures, versus: versusRows };
  },

  async idlecpu(ctx) {
    const ns = 'bench-idlecpu';
    const pairs = 1700;
    return withAdoptedPairs(ctx, ns, pairs, HRTO, [], async ({ h }) => {
      await sleep(IDLE_SETTLE_MS);
      const windowMs = 60_000;
      const { cpu, elapsed, percent } = await cpuOver(h.pid, windowMs);
      // A second minute right after: how much of the first was the process settling after adoption.
      const { percent: secondPercent } = await cpuOver(h.pid, windowMs);
      const m = memory(h.pid);
      const result = {
        watchedSources: pairs,
        helmReleases: pairs,
        windowSeconds: Number(elapsed.toFixed(1)),
        cpuSeconds: Number(cpu.toFixed(2)),
        percentOfOneCore: Number(percent.toFixed(3)),
        secondMinutePercentOfOneCore: Number(secondPercent.toFixed(3)),
        rssMiB: mib(m.rssMiB),
      };
      const figures: Figure[] = [figure('idlecpu', 'idle CPU, 3,400 watched sources and releases (60 s)', percent, '%', { baseline: { value: 0.23, what: GO }, goal: { max: 0.3 }, original: '0.23 %' })];
      say(`idlecpu: ${pairs} sources + ${pairs} HelmReleases, all adopted, nothing changing, ${(windowMs / 1000).toFixed(0)} s (defaults)`);
      table([{ 'CPU s': result.cpuSeconds, '% of one core': result.percentOfOneCore, '% in the next minute': result.secondMinutePercentOfOneCore, 'RSS MiB': result.rssMiB }]);
      return { ...result, figures };
    });
  },
};

interface CpuRun {
  op: Operator;
  /** Unrounded, for the figures. */
  cpu: number;
  /** The same burst again on the same process. */
  againCpu: number;
  peakMiB: number;
  result: {
    changes: number;
    releases: number;
    settings: string;
    writtenInMs: number;
    allRecordedInMs: number;
    cpuSeconds: number;
    /** Of cpuSeconds, the main thread's, for Node.js; the rest is its other threads (none for Go, which spreads its work over its threads). */
    mainThreadCpuSeconds: number | undefined;
    peakRssMiB: number;
    peakRssHwmMiB: number | undefined;
    /** RssAnon and RssFile of the highest sample. */
    peakRssSplitMiB: { anon: number; file: number };
    rssSamples: number;
    triggers: number;
    writes: ReturnType<typeof operatorWrites>;
    /** hrto's reconciles during the burst, by queue (hrto_reconciles_total). */
    reconciles: Record<string, number> | undefined;
    /** The same burst again on the same process (rounds 11-20). */
    again: { cpuSeconds: number; mainThreadCpuSeconds: number | undefined; allRecordedInMs: number; peakRssMiB: number; triggers: number; writesPerTrigger: number };
  };
}

/** CPU, main thread apart, and time for one burst of `rounds` writes of every source, until every final state is recorded. */
async function burst(ctx: Ctx, ns: string, { names, tracker, h }: { names: string[]; tracker: Tracker; h: OperatorProcess }, first: number, rounds: number) {
  const mark = ctx.audit.mark();
  const cpu0 = cpuSeconds(h.pid);
  const main0 = mainThreadCpuSeconds(h.pid);
  const sampler = new RssSampler(h.pid, 50);
  const t0 = performance.now();
  const last = first + rounds - 1;
  for (let round = first; round <= last; round++) await inBatches(names, 50, (name) => writeSource(ctx, ns, name, `v: ${round}\n`));
  const writtenMs = performance.now() - t0;
  tracker.expect(new Map(names.map((n) => [n, `v: ${last}\n`])));
  const doneAt = await tracker.waitFor(names.length, 300_000);
  const cpu = cpuSeconds(h.pid) - cpu0;
  const mainCpu = mainThreadCpuSeconds(h.pid) - main0;
  const peak = sampler.stop();
  return { mark, cpu, mainCpu, peak, writtenMs, doneMs: doneAt - t0 };
}

/**
 * One operator's `cpu`: 100 fresh pairs, every source adopted (+2 s for its tail), then 10 rounds
 * each writing every source once (50 writes in flight, so each source's last write is known to be
 * round 10's); CPU-seconds and peak RSS from the first write until every final state is recorded.
 * Then the same burst again on the same process: for Node.js the first pays V8's compiling of the
 * hot paths (on its background threads), the second is the cost per change once it has.
 */
async function cpuRun(ctx: Ctx, op: Operator): Promise<CpuRun> {
  const ns = 'bench-cpu';
  return withAdoptedPairs(ctx, ns, 100, op, UNTHROTTLED, async (run) => {
    const { names, h } = run;
    await sleep(2000);
    const reconciles0 = await reconcilesOf(h);
    const rounds = 10;
    const cold = await burst(ctx, ns, run, 1, rounds);
    await sleep(1500);
    const writes = operatorWrites(ctx.audit.since(cold.mark), ns, op.sent);
    const reconciles1 = await reconcilesOf(h);
    const warm = await burst(ctx, ns, run, rounds + 1, rounds);
    await sleep(1500);
    const warmWrites = operatorWrites(ctx.audit.since(warm.mark), ns, op.sent);
    const seconds = (s: number) => Number(s.toFixed(2));
    const mainThread = (s: number) => (op.id === 'original' ? undefined : seconds(s));
    return {
      op,
      cpu: cold.cpu,
      againCpu: warm.cpu,
      peakMiB: cold.peak.maxMiB,
      result: {
        changes: rounds * names.length,
        releases: names.length,
        settings: op.id === 'original' ? 'its own: no debounce, throttle or client-side limit to lift' : UNTHROTTLED.join(' '),
        writtenInMs: Math.round(cold.writtenMs),
        allRecordedInMs: Math.round(cold.doneMs),
        cpuSeconds: seconds(cold.cpu),
        mainThreadCpuSeconds: mainThread(cold.mainCpu),
        peakRssMiB: mib(cold.peak.maxMiB),
        peakRssHwmMiB: cold.peak.hwmMiB === undefined ? undefined : mib(cold.peak.hwmMiB),
        peakRssSplitMiB: { anon: mib(cold.peak.maxAnonMiB), file: mib(cold.peak.maxFileMiB) },
        rssSamples: cold.peak.samples,
        triggers: writes.triggers,
        writes,
        reconciles: reconciles1 && reconciles0 ? Object.fromEntries(Object.entries(reconciles1).map(([q, n]) => [q, n - (reconciles0[q] ?? 0)])) : undefined,
        again: {
          cpuSeconds: seconds(warm.cpu),
          mainThreadCpuSeconds: mainThread(warm.mainCpu),
          allRecordedInMs: Math.round(warm.doneMs),
          peakRssMiB: mib(warm.peak.maxMiB),
          triggers: warmWrites.triggers,
          writesPerTrigger: warmWrites.perTrigger,
        },
      },
    };
  });
}

/** hrto's reconciles so far, by queue (a scrape: only outside the measured spans); undefined for the others. */
async function reconcilesOf(h: OperatorProcess): Promise<Record<string, number> | undefined> {
  if (!(h instanceof HrtoProcess)) return undefined;
  const out: Record<string, number> = {};
  for (const [series, n] of await h.metrics()) {
    const queue = /^hrto_reconciles_total\{queue="([^"]+)"/.exec(series)?.[1];
    if (queue) out[queue] = (out[queue] ?? 0) + n;
  }
  return out;
}

const REACTION_CHANGES = 500;
const REACTION_RATE = 25;

interface ReactionRun {
  op: Operator;
  writes: Write[];
  /** The audit log from just before the first write until 1.5 s after the last digest was recorded. */
  events: AuditEvent[];
}

/**
 * One operator's phase of `reaction`: started (hrto UNTHROTTLED) on the pairs, every source adopted,
 * then REACTION_CHANGES paced writes; ends once every change was seen triggered on the watch and
 * every final content carries its digest, and stops the operator.
 */
async function reactionRun(ctx: Ctx, ns: string, names: readonly string[], op: Operator, waitSeen: (writes: Write[], what: string) => Promise<unknown>): Promise<ReactionRun> {
  const tracker = await trackRecorded(ctx, ns, op);
  const h = op.process(ctx, [`--watch-namespaces=${ns}`, ...UNTHROTTLED]);
  try {
    await h.start();
    await h.ready();
    await tracker.waitFor(names.length);
    await sleep(1000);
    const mark = ctx.audit.mark();
    const writes = await pacedWrites(ctx, ns, names, REACTION_CHANGES, REACTION_RATE, op.id);
    await waitSeen(writes, `every change triggered by ${op.label}`);
    tracker.expect(new Map(writes.map((w, i) => [w.name, `v: ${op.id}-${i}\n`])));
    await tracker.waitFor(names.length, 60_000);
    await sleep(1500);
    return { op, writes, events: ctx.audit.since(mark) };
  } finally {
    tracker.stop();
    await h.stop();
  }
}

function pcols(p: { p50: number; p90: number; p99: number; max: number }): Record<string, number> {
  return { 'p50 ms': p.p50, 'p90 ms': p.p90, 'p99 ms': p.p99, 'max ms': p.max };
}
