// The fleet day (opt-in by name only: `npm run bench -- fleet`; never in `all` or `npm test`): hrto
// as a Deployment of two replicas electing a leader at the default lease timings, over 2,000
// source/HelmRelease pairs for 30 minutes at the default valves, a tenth of the sources changed
// every second, kube-apiserver restarted every 5 minutes and the leader SIGKILLed once (at minute
// 12). It answers what a short run cannot: is any final state lost across restarts and a takeover,
// do the valves hold per release and overall, is RSS flat (no leak), what a change costs in CPU, and
// how reaction moves around each restart.
//
// HRTO_BENCH_FLEET_MINUTES and HRTO_BENCH_FLEET_PAIRS shrink it for a smoke run; the restart
// interval, the kill, the RSS sampling and its slope window, and the reaction windows scale with the
// duration (5/30, 12/30, 1/60, 20/30 and 1/30 of it). The valves and lease timings never scale:
// they are what is under test. HRTO_BENCH_FLEET_ROTATION sets how many seconds apart each source
// changes (10) and HRTO_BENCH_FLEET_FAULTS=off leaves kube-apiserver and the leader alone.
//
// `sustained` is the same day with the faults off: 200 pairs for 4 minutes, every source changed
// every second (in `all`; about 5 minutes).
import { type AuditEvent, byHrto, fieldManagerOf, isReleasePatch, micros, operatorWrites, type ReactionPair, reactionTimes } from '../audit.js';
import { figure, type Figure } from '../figures.js';
import type { FullGc, HrtoProcess } from '../hrto.js';
import { HRTO, type Operator } from '../operators.js';
import { BENCH_MANAGER, type Ctx, HR_API, inBatches, mib, percentiles, REQUESTED_AT, say, type ScenarioResult, sleep, table, type Tracker, until, WATCH, withAdoptedPairs, writeSource } from '../lib.js';
import { cpuSeconds, memory } from '../proc.js';

// The defaults users run (src/config.ts), written out because the analysis needs their values.
const DEBOUNCE_MS = 1000;
const MIN_INTERVAL_MS = 30_000;
const MAX_TRIGGERS_PER_SECOND = 10;
/** src/controller.ts gives the trigger throttle a burst of max(1, rate). */
const TRIGGER_BURST = Math.max(1, MAX_TRIGGERS_PER_SECOND);
const VALVES = [`--debounce=${DEBOUNCE_MS / 1000}s`, `--min-trigger-interval=${MIN_INTERVAL_MS / 1000}s`, `--max-triggers-per-second=${MAX_TRIGGERS_PER_SECOND}`];
const LEASE = 'hrto-bench-fleet';
/** Lease timings are hrto's defaults (15s/10s/2s): not passed, so the run uses what users get. */
const LEASE_DEFAULTS = 'lease duration 15s, renew deadline 10s, retry period 2s (defaults)';

/** kube-apiserver is SIGKILLed and started again this much later; its start-up until /readyz comes on top (measured). */
const APISERVER_DOWN_MS = 2000;
/**
 * A replica that exits on its own (hrto exits 1 when it loses leadership, as controller-runtime
 * managers do) is started again after kubelet's first crash back-off, as its pod's container would be.
 */
const CRASH_BACKOFF_MS = 10_000;
/** Writes in flight: enough for 200 writes a second. */
const WRITERS = 25;
/** A write refused while the API server is down is sent again this often until it is back. */
const RETRY_MS = 250;
const LEASE_POLL_MS = 1000;
/**
 * A leader change seen this soon after a restart's API server is ready is the restart's: a standby
 * takes an unrenewed Lease 15 s (lease duration) after it last saw it renewed, trying every 2 s,
 * and the bench reads the Lease every second.
 */
const RESTART_TAKEOVER_MS = 20_000;

const minutes = (ms: number) => `${Number((ms / 60_000).toFixed(2))} min`;
const sleepUntil = (at: number) => sleep(Math.max(0, at - Date.now()));

/** What a day is made of. */
interface Day {
  /** The scenario's name, on its figures and lines. */
  name: string;
  pairs: number;
  minutes: number;
  /** Each round writes one of `rotation` slices, so each source changes every `rotation` seconds. */
  rotation: number;
  /** kube-apiserver restarted every 5/30 of the day and the leader SIGKILLed at 12/30. */
  faults: boolean;
}

/** The run's clock, all scaled from the 30-minute day. */
function schedule(d: Day) {
  const durationMs = d.minutes * 60_000;
  const day = durationMs / 1_800_000;
  return {
    ...d,
    durationMs,
    restartEveryMs: d.faults ? 300_000 * day : Infinity,
    killAtMs: d.faults ? 720_000 * day : Infinity,
    sampleEveryMs: 30_000 * day,
    slopeWindowMs: 1_200_000 * day,
    reactionWindowMs: 60_000 * day,
  };
}

/** One process of a replica: the first, or one started in its place. */
interface Incarnation {
  /** hrto-<replica>#<n> */
  label: string;
  replica: number;
  h: HrtoProcess;
  pid: number;
  startedAt: number;
  /** CPU-seconds already used when its count starts: at the load for those running then, else 0. */
  cpuBase: number;
  /** CPU-seconds at the last reading (every LEASE_POLL_MS, and just before the bench kills it). */
  cpu: number;
  /** Its Lease identity (hostname_uuid, random per process), once it was seen leading. */
  identity?: string;
  /** When it became the leader the last time. */
  leadingSince?: number;
  ended?: { at: number; by: 'bench' | 'itself'; code: number | null; signal: string | null };
  rss: { at: number; rssMiB: number; anonMiB: number; fileMiB: number; leader: boolean }[];
  /** Its full GCs (`--trace-gc`): the heap after each is what it holds on to, where a leak shows. */
  gcs: readonly FullGc[];
}

interface LeaderChange {
  /** When the bench saw it (the Lease is read every LEASE_POLL_MS). */
  seenAt: number;
  from?: string;
  to?: string;
  /** The new holder's acquireTime, from its own clock (this machine's). */
  acquiredAt?: number;
}

interface LeaseObject {
  spec?: { holderIdentity?: string; acquireTime?: string; leaseTransitions?: number };
}

/**
 * The replicas, supervised as a Deployment's pods would be: started, watched for their exit (one
 * that exits on its own is started again after CRASH_BACKOFF_MS), their CPU read from /proc every
 * second and their RSS every sample period, the Lease read every second for the holder. Which
 * process holds the Lease is learnt once per new holder from the processes' `hrto_leader` gauge
 * (a scrape at a leader change only: memory and CPU are never read from a scrape).
 */
class Fleet {
  readonly incarnations: Incarnation[] = [];
  readonly changes: LeaderChange[] = [];
  holder: string | undefined;
  private stopping = false;
  private spawning = new Set<Promise<unknown>>();
  private sampleEveryMs = 0;
  private nextSampleAt = Infinity;
  private monitor: Promise<void> | undefined;
  private readonly counts = new Map<number, number>();

  constructor(
    private readonly ctx: Ctx,
    private readonly ns: string,
    private readonly args: readonly string[],
  ) {}

  live(): Incarnation[] {
    return this.incarnations.filter((i) => !i.ended);
  }

  leader(): Incarnation | undefined {
    return this.holder === undefined ? undefined : this.live().find((i) => i.identity === this.holder);
  }

  byIdentity(identity: string | undefined): Incarnation | undefined {
    return identity === undefined ? undefined : this.incarnations.find((i) => i.identity === identity);
  }

  /** A running process of `replica` (withAdoptedPairs started the first). */
  adopt(h: HrtoProcess, replica: number): Incarnation {
    const n = (this.counts.get(replica) ?? 0) + 1;
    this.counts.set(replica, n);
    const inc: Incarnation = { label: `hrto-${replica}#${n}`, replica, h, pid: h.pid, startedAt: Date.now(), cpuBase: 0, cpu: 0, rss: [], gcs: h.fullGcs };
    this.incarnations.push(inc);
    void h.exited!.then(({ code, signal }) => {
      inc.ended ??= { at: Date.now(), by: 'itself', code, signal };
      if (inc.ended.by === 'bench' || this.stopping) return;
      say(`  fleet: ${inc.label} exited on its own (${signal ?? `code ${code}`}) at ${this.clock()}; started again in ${CRASH_BACKOFF_MS / 1000} s; its last lines:`);
      for (const line of h.lastLines.slice(-5)) say(`    ${line.slice(0, 400)}`);
      void sleep(CRASH_BACKOFF_MS).then(() => this.spawn(replica).catch((err: Error) => say(`  fleet: ${inc.label}'s replacement failed: ${err.message}`)));
    });
    return inc;
  }

  /** A new process of `replica`, started and ready (caches synced). */
  spawn(replica: number): Promise<Incarnation | undefined> {
    if (this.stopping) return Promise.resolve(undefined);
    const started = (async () => {
      const h = TRACED.process(this.ctx, [`--watch-namespaces=${this.ns}`, ...this.args]);
      await h.start();
      const inc = this.adopt(h, replica);
      await h.ready();
      return inc;
    })();
    this.spawning.add(started);
    void started.finally(() => this.spawning.delete(started)).catch(() => undefined);
    return started;
  }

  /** SIGKILL, its CPU read just before. */
  kill(inc: Incarnation): number {
    this.readCpu(inc);
    const at = Date.now();
    inc.ended = { at, by: 'bench', code: null, signal: 'SIGKILL' };
    inc.h.killNow();
    return at;
  }

  /** From now: CPU counted from here for the live processes, RSS sampled every `sampleEveryMs`. */
  startLoad(sampleEveryMs: number): void {
    for (const inc of this.live()) inc.cpuBase = cpuSeconds(inc.pid);
    this.sampleEveryMs = sampleEveryMs;
    this.nextSampleAt = Date.now();
  }

  stopSampling(): void {
    this.sampleRss();
    this.nextSampleAt = Infinity;
  }

  /** CPU-seconds of every process since the load started (the ended ones: at their last reading). */
  cpuTotal(): number {
    for (const inc of this.live()) this.readCpu(inc);
    return this.incarnations.reduce((sum, i) => sum + (i.cpu - i.cpuBase), 0);
  }

  startMonitor(): void {
    this.monitor ??= (async () => {
      while (!this.stopping) {
        await this.poll();
        await sleep(LEASE_POLL_MS);
      }
    })();
  }

  /** Stops every process it started (SIGTERM, SIGKILL after 40 s), a replacement being started included. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.monitor;
    await Promise.allSettled([...this.spawning]);
    await Promise.all(this.live().map((i) => i.h.stop()));
  }

  clock(): string {
    return new Date().toISOString().slice(11, 19);
  }

  private readCpu(inc: Incarnation): void {
    try {
      inc.cpu = cpuSeconds(inc.pid);
    } catch {
      // gone since the last reading
    }
  }

  private sampleRss(): void {
    const at = Date.now();
    for (const inc of this.live()) {
      try {
        const m = memory(inc.pid);
        inc.rss.push({ at, rssMiB: mib(m.rssMiB), anonMiB: mib(m.anonMiB), fileMiB: mib(m.fileMiB), leader: inc.identity !== undefined && inc.identity === this.holder });
      } catch {
        // gone
      }
    }
  }

  private async poll(): Promise<void> {
    const lease = await this.ctx.kube.request<LeaseObject>('GET', `/apis/coordination.k8s.io/v1/namespaces/${this.ns}/leases/${LEASE}`).catch(() => undefined);
    const holder = lease?.spec?.holderIdentity;
    if (lease && holder !== this.holder) {
      const acquiredAt = Date.parse(lease.spec?.acquireTime ?? '');
      this.changes.push({ seenAt: Date.now(), from: this.holder, to: holder, ...(Number.isNaN(acquiredAt) ? {} : { acquiredAt }) });
      this.holder = holder;
      // Not awaited: the CPU readings and samples go on while the new holder is looked for.
      void this.identify(holder);
    }
    for (const inc of this.live()) this.readCpu(inc);
    if (Date.now() >= this.nextSampleAt) {
      this.sampleRss();
      // A poll held up (the API server down) skips the samples it missed rather than bunching them.
      while (this.nextSampleAt <= Date.now()) this.nextSampleAt += this.sampleEveryMs;
    }
  }

  /** Which live process holds the Lease: the one whose hrto_leader gauge says 1 (tried for 15 s). */
  private async identify(holder: string | undefined): Promise<void> {
    if (holder === undefined) return;
    const known = this.byIdentity(holder);
    if (known) {
      known.leadingSince = Date.now();
      return;
    }
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && !this.stopping && this.holder === holder) {
      for (const inc of this.live().filter((i) => i.identity === undefined)) {
        const leading = await inc.h
          .metrics()
          .then((m) => m.get('hrto_leader') === 1)
          .catch(() => false);
        if (leading) {
          inc.identity = holder;
          inc.leadingSince = Date.now();
          return;
        }
      }
      await sleep(200);
    }
  }
}

/** Least-squares slope of `mib` in MiB per hour; undefined with fewer than 3 points. */
function slopeMiBPerHour(points: readonly { at: number; mib: number }[]): number | undefined {
  if (points.length < 3) return undefined;
  const xs = points.map((p) => p.at / 3_600_000);
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = points.reduce((a, p) => a + p.mib, 0) / points.length;
  let num = 0;
  let den = 0;
  points.forEach((p, i) => {
    num += (xs[i]! - mx) * (p.mib - my);
    den += (xs[i]! - mx) ** 2;
  });
  return den === 0 ? undefined : num / den;
}

/** A series' slope over [from, to] with its extent, or undefined with fewer than 3 points there. */
function slopeOver(points: readonly { at: number; mib: number }[], from: number, to: number, at: (ms: number) => number) {
  const window = points.filter((p) => p.at >= from && p.at <= to);
  const slope = slopeMiBPerHour(window);
  if (slope === undefined) return undefined;
  const values = window.map((p) => p.mib);
  return { miBPerHour: Number(slope.toFixed(2)), fromS: at(from), samples: window.length, minMiB: Math.min(...values), maxMiB: Math.max(...values) };
}

/** A slope as the table shows it: MiB/h (from, points, range), or '-'. */
const showSlope = (s: ReturnType<typeof slopeOver>): string => (s ? `${s.miBPerHour} (${s.fromS} s, ${s.samples}, ${s.minMiB}-${s.maxMiB})` : '-');

/** A series' first, highest and last value; undefined when empty. */
function extent(points: readonly { mib: number }[]) {
  if (points.length === 0) return undefined;
  return { first: points[0]!.mib, max: Math.max(...points.map((p) => p.mib)), last: points.at(-1)!.mib };
}

/** An extent as the table shows it: first / max / last, or '-'. */
const showExtent = (e: ReturnType<typeof extent>, suffix = ''): string => (e ? `${e.first} / ${e.max} / ${e.last}${suffix}` : '-');

/** hrto with `--trace-gc`: each process keeps its full GCs. */
const TRACED: Operator<HrtoProcess> = { ...HRTO, process: (ctx, args) => HRTO.process(ctx, args, { traceGc: true }) };

/** The most of `sorted` (ascending) in any half-open window [t, t + width), and where the first such window starts. */
function mostInWindow(sorted: readonly number[], width: number): { count: number; from: number } {
  let count = 0;
  let from = NaN;
  let i = 0;
  for (let j = 0; j < sorted.length; j++) {
    while (sorted[j]! - sorted[i]! >= width) i++;
    if (j - i + 1 > count) {
      count = j - i + 1;
      from = sorted[i]!;
    }
  }
  return { count, from };
}

interface RestartRecord {
  n: number;
  killedAt: number;
  readyAt: number;
  leaderBefore?: string;
}

/** The day from the environment (HRTO_BENCH_FLEET_*), checked. */
function dayFromEnv(): Day {
  const env = (key: string, fallback: string) => process.env[`HRTO_BENCH_FLEET_${key}`] || fallback;
  const day: Day = { name: 'fleet', pairs: Number(env('PAIRS', '2000')), minutes: Number(env('MINUTES', '30')), rotation: Number(env('ROTATION', '10')), faults: env('FAULTS', 'on') !== 'off' };
  if (!Number.isInteger(day.rotation) || day.rotation < 1) throw new Error(`bench: HRTO_BENCH_FLEET_ROTATION=${env('ROTATION', '')}: an integer number of seconds >= 1`);
  if (!Number.isInteger(day.pairs) || day.pairs < day.rotation) throw new Error(`bench: HRTO_BENCH_FLEET_PAIRS=${env('PAIRS', '')}: an integer >= the rotation (${day.rotation})`);
  if (!(day.minutes > 0)) throw new Error(`bench: HRTO_BENCH_FLEET_MINUTES=${env('MINUTES', '')}: a number of minutes > 0`);
  if (!['on', 'off'].includes(env('FAULTS', 'on'))) throw new Error(`bench: HRTO_BENCH_FLEET_FAULTS=${env('FAULTS', '')}: on or off`);
  return day;
}

export const fleetScenarios: Record<string, (ctx: Ctx) => Promise<ScenarioResult>> = {
  fleet: (ctx) => aDay(ctx, dayFromEnv()),
  sustained: (ctx) => aDay(ctx, { name: 'sustained', pairs: 200, minutes: 4, rotation: 1, faults: false }),
};

async function aDay(ctx: Ctx, day: Day): Promise<ScenarioResult> {
  const plan = schedule(day);
  const ns = `bench-${day.name}`;
  const args = ['--leader-elect=true', `--leader-election-namespace=${ns}`, `--leader-election-id=${LEASE}`, ...VALVES];
  const faults = day.faults
    ? `kube-apiserver restarted every ${minutes(plan.restartEveryMs)} (down ${APISERVER_DOWN_MS / 1000} s + its start-up), the leader SIGKILLed at ${minutes(plan.killAtMs)}`
    : 'no faults';
  say(`${day.name}: ${day.pairs} pairs, 2 replicas with leader election (${LEASE_DEFAULTS}), ${VALVES.join(' ')}; ${minutes(plan.durationMs)} of load, ${day.pairs / day.rotation} sources changed a second, ${faults}`);
  // Replica 0 adopts every source alone (it leads at once); replica 1 joins as its standby.
  return withAdoptedPairs(ctx, ns, day.pairs, TRACED, args, async ({ names, tracker, h }) => {
    const fleet = new Fleet(ctx, ns, args);
    fleet.adopt(h, 0);
    try {
      fleet.startMonitor();
      await until('replica 0 seen holding the Lease', () => Promise.resolve(fleet.leader()), 60_000);
      await fleet.spawn(1);
      if (fleet.leader()?.replica !== 0) throw new Error(`bench: expected replica 0 to lead before the load, the Lease says ${fleet.holder}`);
      return await dayOfLoad(ctx, ns, names, tracker, fleet, plan);
    } finally {
      await fleet.stop();
    }
  });
}

async function dayOfLoad(
  ctx: Ctx,
  ns: string,
  names: readonly string[],
  tracker: Tracker,
  fleet: Fleet,
  plan: ReturnType<typeof schedule>,
): Promise<ScenarioResult> {
  const { pairs, rotation, name: scenario } = plan;
  const mark = ctx.audit.mark();
  const t0 = Date.now();
  const at = (ms: number) => Number(((ms - t0) / 1000).toFixed(1));
  const deadline = t0 + plan.durationMs;
  fleet.startLoad(plan.sampleEveryMs);
  let aborted = false;
  /** Each source's last acknowledged write: the value, and when its first attempt was sent. */
  const final = new Map<string, { value: string; sentAt: number }>();
  /** Writes given up at the deadline (their content may or may not have landed). */
  const abandoned = new Map<string, { value: string; sentAt: number }>();
  const load = { writes: 0, retriedWrites: 0, retries: 0, failedWrites: 0, skippedRounds: 0, rounds: 0 };

  /** One write, sent again while the API server refuses it, until it lands or the load ends. */
  const write = async (name: string, value: string) => {
    let sentAt: number | undefined;
    for (let attempt = 0; ; attempt++) {
      if (Date.now() >= deadline || aborted) {
        if (sentAt !== undefined) {
          load.failedWrites++;
          abandoned.set(name, { value, sentAt });
        }
        return;
      }
      sentAt ??= Date.now();
      try {
        await writeSource(ctx, ns, name, value);
        final.set(name, { value, sentAt });
        abandoned.delete(name);
        load.writes++;
        if (attempt > 0) load.retriedWrites++;
        return;
      } catch {
        load.retries++;
        await sleep(RETRY_MS);
      }
    }
  };
  const slices = Array.from({ length: rotation }, (_, k) => names.filter((_, i) => i % rotation === k));
  // One round a second; a round that cannot start on time starts at once and the
  // rounds it overlapped are skipped (counted); nothing is sent past the deadline.
  const writeLoad = async () => {
    let round = 0;
    while (Date.now() < deadline && !aborted) {
      await sleepUntil(t0 + round * 1000);
      if (Date.now() >= deadline || aborted) break;
      const r = round;
      await inBatches(slices[r % rotation]!, WRITERS, (name) => write(name, `v: fleet-${r}\n`));
      load.rounds++;
      const next = Math.max(round + 1, Math.floor((Date.now() - t0) / 1000));
      load.skippedRounds += next - round - 1;
      round = next;
    }
  };
  const restarts: RestartRecord[] = [];
  const apiserverRestarts = async () => {
    for (let n = 1; n * plan.restartEveryMs < plan.durationMs - 1000; n++) {
      await sleepUntil(t0 + n * plan.restartEveryMs);
      if (aborted) return;
      const leaderBefore = fleet.leader()?.label;
      const killedAt = Date.now();
      await ctx.cp.restartApiserver(APISERVER_DOWN_MS);
      const record = { n, killedAt, readyAt: Date.now(), ...(leaderBefore ? { leaderBefore } : {}) };
      restarts.push(record);
      say(`  fleet: kube-apiserver restart ${n} at ${at(killedAt)} s, ready again after ${((record.readyAt - killedAt) / 1000).toFixed(1)} s`);
    }
  };
  // The leader SIGKILLed; the standby takes over once the Lease expires; the killed replica is then
  // started again as a new standby (as its pod would be), so the fleet ends with two replicas.
  let killChange: LeaderChange | undefined;
  const leaderKill = async () => {
    if (!plan.faults) return undefined;
    await sleepUntil(t0 + plan.killAtMs);
    if (aborted) return undefined;
    const victim = await until('a known leader to kill', () => Promise.resolve(fleet.leader()), 60_000);
    const killedAt = fleet.kill(victim);
    say(`  fleet: ${victim.label} (the leader) SIGKILLed at ${at(killedAt)} s`);
    const change = await until('a standby taking over', () => Promise.resolve(fleet.changes.find((c) => c.seenAt >= killedAt && c.to !== undefined && c.to !== victim.identity)), 120_000);
    killChange = change;
    const successor = await until('the new leader identified', () => Promise.resolve(fleet.byIdentity(change.to)), 20_000).catch(() => undefined);
    const takeoverMs = (change.acquiredAt ?? change.seenAt) - killedAt;
    say(`  fleet: ${successor?.label ?? change.to} took over ${(takeoverMs / 1000).toFixed(1)} s after the kill (Lease acquireTime); starting replica ${victim.replica} again as a standby`);
    const replacement = await fleet.spawn(victim.replica);
    return { killed: victim.label, killedAtS: at(killedAt), newLeader: successor?.label ?? change.to, takeoverSeconds: Number((takeoverMs / 1000).toFixed(2)), seenAfterSeconds: Number(((change.seenAt - killedAt) / 1000).toFixed(1)), replacement: replacement?.label };
  };
  const guard = <T>(p: Promise<T>) =>
    p.catch((err: unknown) => {
      aborted = true;
      throw err;
    });
  const [, , kill] = await Promise.all([guard(writeLoad()), guard(apiserverRestarts()), guard(leaderKill())]);
  await sleepUntil(deadline);
  const loadEnd = Date.now();
  fleet.stopSampling();

  // Quiescence: every final content digested. At most one trigger per release is due after the
  // load (its min interval away), and the throttle lets the backlog out at MAX_TRIGGERS_PER_SECOND.
  const quiesceTimeoutMs = Math.round((MIN_INTERVAL_MS + (pairs / MAX_TRIGGERS_PER_SECOND) * 1000) * 1.5 + 60_000);
  tracker.expect(new Map([...final].filter(([name]) => !abandoned.has(name)).map(([name, f]) => [name, f.value])));
  const quietAt = await tracker.waitFor(pairs, quiesceTimeoutMs).then(
    () => Date.now(),
    () => undefined,
  );
  await sleep(2000);
  const cpu = fleet.cpuTotal();
  const endAt = Date.now();

  // Final states: content as last written, its digest recorded, and its release's requestedAt after
  // the first send of that last write (hrto's clock and the bench's are this machine's).
  const [cms, hrs] = await Promise.all([ctx.kube.list(`/api/v1/namespaces/${ns}/configmaps`, { labelSelector: `${WATCH}=true` }), ctx.kube.list(`${HR_API}/namespaces/${ns}/helmreleases`)]);
  const cmOf = new Map(cms.items.map((o) => [o.metadata?.name ?? '', o]));
  const requestedOf = new Map(hrs.items.map((o) => [o.metadata?.name ?? '', Date.parse(o.metadata?.annotations?.[REQUESTED_AT] ?? '')]));
  const states = { lost: 0, contentDiffers: 0, digestNotRecorded: 0, notTriggeredAfter: 0, abandonedWriteLanded: 0, examples: [] as string[] };
  for (const name of names) {
    const cm = cmOf.get(name);
    const content = cm?.data?.['values.yaml'];
    // Never written by the load (a run shorter than a rotation): namespaceWithPairs' first content.
    let expected = final.get(name) ?? { value: 'v: 0\n', sentAt: 0 };
    const gaveUp = abandoned.get(name);
    if (gaveUp && content === gaveUp.value && content !== expected.value) {
      expected = gaveUp;
      states.abandonedWriteLanded++;
    }
    const contentOk = content === expected.value;
    const digestOk = cm !== undefined && HRTO.recorded(cm);
    const triggeredOk = (requestedOf.get(name) ?? NaN) >= expected.sentAt;
    if (!contentOk) states.contentDiffers++;
    if (!digestOk) states.digestNotRecorded++;
    if (!triggeredOk) states.notTriggeredAfter++;
    if (!(contentOk && digestOk && triggeredOk)) {
      states.lost++;
      if (states.examples.length < 5) states.examples.push(`${name}: content ${contentOk ? 'ok' : 'differs'}, digest ${digestOk ? 'ok' : 'not recorded'}, requestedAt ${triggeredOk ? 'after' : 'before'} the last write`);
    }
  }

  // The audit log: hrto's writes in the namespace, and the bench's writes in the reaction windows
  // only (a full day logs hundreds of thousands; they are dropped as the log is read).
  const windowMs = plan.reactionWindowMs;
  const windows = restarts.flatMap((r) => [
    [(r.killedAt - windowMs) * 1000, r.killedAt * 1000],
    [r.readyAt * 1000, (r.readyAt + windowMs) * 1000],
  ]);
  const benchWriteInWindow = (e: AuditEvent) => {
    if (e.verb !== 'patch' || e.objectRef?.resource !== 'configmaps' || fieldManagerOf(e) !== BENCH_MANAGER) return false;
    const done = micros(e.stageTimestamp);
    return windows.some(([from, to]) => done >= from! && done < to!);
  };
  const events = ctx.audit.since(mark, (e) => e.objectRef?.namespace === ns && (byHrto(e) || benchWriteInWindow(e)));
  const accepted = (e: AuditEvent) => byHrto(e) && (e.responseStatus?.code ?? 0) < 300;
  const triggers = events.filter((e) => isReleasePatch(e) && accepted(e));

  // The valves: per release, consecutive triggers at least the min interval apart (as the API
  // server received them: less the send's own latency); overall, the throttle's token bucket allows
  // at most burst + rate x T triggers in any T seconds.
  const byRelease = new Map<string, number[]>();
  for (const e of triggers) {
    const list = byRelease.get(e.objectRef?.name ?? '') ?? [];
    list.push(micros(e.requestReceivedTimestamp));
    byRelease.set(e.objectRef?.name ?? '', list);
  }
  let mostPerInterval = 0;
  let minGapMs = Infinity;
  let gapsUnderInterval = 0;
  const TOLERANCE_MS = 500;
  for (const list of byRelease.values()) {
    list.sort((a, b) => a - b);
    mostPerInterval = Math.max(mostPerInterval, mostInWindow(list, MIN_INTERVAL_MS * 1000).count);
    for (let i = 1; i < list.length; i++) {
      const gap = (list[i]! - list[i - 1]!) / 1000;
      minGapMs = Math.min(minGapMs, gap);
      if (gap < MIN_INTERVAL_MS - TOLERANCE_MS) gapsUnderInterval++;
    }
  }
  const all = triggers.map((e) => micros(e.requestReceivedTimestamp)).sort((a, b) => a - b);
  const densest1s = mostInWindow(all, 1e6);
  const densest10s = mostInWindow(all, 10e6);
  const mostIn1s = densest1s.count;
  const mostIn10s = densest10s.count;
  // The throttle paces the triggers as hrto sends them. While kube-apiserver starts (its port open,
  // /readyz not yet 200) requests sent at that pace wait and are received together, so the same
  // figures are also given without what arrived from each restart's kill to 10 s after its ready.
  const aroundRestart = (t: number) => restarts.some((r) => t >= r.killedAt * 1000 && t < (r.readyAt + 10_000) * 1000);
  const away = all.filter((t) => !aroundRestart(t));
  const awayIn1s = mostInWindow(away, 1e6).count;
  const awayIn10s = mostInWindow(away, 10e6).count;
  const duringLoad = all.filter((t) => t >= t0 * 1000 && t < loadEnd * 1000).length;
  /** Where a dense window sits: seconds into the load, and after which restart or takeover. */
  const place = (fromMicros: number) => {
    const ms = fromMicros / 1000;
    const events = [
      ...restarts.flatMap((r) => [
        { what: `kube-apiserver was killed for restart ${r.n} (ready ${((r.readyAt - r.killedAt) / 1000).toFixed(1)} s after the kill)`, at: r.killedAt },
        { what: `restart ${r.n} was ready`, at: r.readyAt },
      ]),
      ...fleet.changes.filter((c) => c.seenAt > t0).map((c) => ({ what: 'a leader change was seen', at: c.seenAt })),
    ];
    const last = events.filter((e) => e.at <= ms).sort((a, b) => b.at - a.at)[0];
    return `${at(ms)} s${last ? `, ${((ms - last.at) / 1000).toFixed(1)} s after ${last.what}` : ''}`;
  };
  const perSecond = new Array<number>(Math.max(0, Math.ceil((endAt - t0) / 1000))).fill(0);
  for (const t of all) {
    const i = Math.floor((t / 1000 - t0) / 1000);
    if (i >= 0 && i < perSecond.length) perSecond[i]!++;
  }
  const valves = {
    triggers: all.length,
    triggersDuringLoad: duringLoad,
    releasesTriggered: byRelease.size,
    perRelease: { mostInAnyMinInterval: mostPerInterval, promise: 1, minGapSeconds: Number((minGapMs / 1000).toFixed(3)), gapsShorterThanInterval: gapsUnderInterval, toleranceMs: TOLERANCE_MS },
    overall: {
      meanPerSecondDuringLoad: Number((duringLoad / ((loadEnd - t0) / 1000)).toFixed(2)),
      mostInAny1s: mostIn1s,
      densest1s: place(densest1s.from),
      promise1s: TRIGGER_BURST + MAX_TRIGGERS_PER_SECOND,
      mostInAny10s: mostIn10s,
      densest10s: place(densest10s.from),
      promise10s: TRIGGER_BURST + MAX_TRIGGERS_PER_SECOND * 10,
      awayFromRestarts: { mostInAny1s: awayIn1s, mostInAny10s: awayIn10s, excluded: 'from each restart of kube-apiserver to 10 s after it was ready' },
    },
    /** Triggers received in each second from the load's start. */
    perSecond,
  };

  // Reaction around each restart: each bench write paired with the first trigger of its release
  // received after it (reactionTimes' rule). With these valves a reaction includes the wait the min
  // interval imposes (up to 30 s after the release's last trigger), so "beyond the interval" takes
  // it out: trigger - max(write completed, last trigger + min interval). What is left is the
  // debounce, the throttle's queue and whatever a restart adds.
  const { pairs: matched } = reactionTimes(events, ns, BENCH_MANAGER, accepted);
  const reactionOf = (list: readonly ReactionPair[]) => {
    const hit = list.filter((p) => p.trigger !== undefined);
    const raw = hit.map((p) => (p.trigger! - p.done) / 1000);
    const beyond = hit.map((p) => (p.trigger! - Math.max(p.done, p.previous === undefined ? -Infinity : p.previous + MIN_INTERVAL_MS * 1000)) / 1000);
    return { writes: list.length, unmatched: list.length - hit.length, reactionMs: percentiles(raw), beyondIntervalMs: percentiles(beyond) };
  };
  const inRange = (from: number, to: number) => matched.filter((p) => p.done >= from * 1000 && p.done < to * 1000);
  const changeNear = (from: number, to: number) => fleet.changes.filter((c) => c !== killChange && c.seenAt >= from && c.seenAt < to);
  const restartRows = restarts.map((r) => {
    const changes = changeNear(r.killedAt, r.readyAt + RESTART_TAKEOVER_MS);
    return {
      n: r.n,
      atS: at(r.killedAt),
      unavailableSeconds: Number(((r.readyAt - r.killedAt) / 1000).toFixed(1)),
      leaderBefore: r.leaderBefore,
      leaderChanges: changes.map((c) => `${fleet.byIdentity(c.from)?.label ?? c.from ?? '-'} -> ${fleet.byIdentity(c.to)?.label ?? c.to ?? '-'} at ${at(c.seenAt)} s`),
      before: reactionOf(inRange(r.killedAt - windowMs, r.killedAt)),
      after: reactionOf(inRange(r.readyAt, r.readyAt + windowMs)),
    };
  });
  const pooled = (side: 'before' | 'after') =>
    reactionOf(restarts.flatMap((r) => (side === 'before' ? inRange(r.killedAt - windowMs, r.killedAt) : inRange(r.readyAt, r.readyAt + windowMs))));

  // RSS: every process's series; the slope over the window that ends with the load, from when the
  // final leader became the leader (a successor's series as leader starts at its takeover) and from
  // its start for a standby.
  const slopeFrom = loadEnd - plan.slopeWindowMs;
  const lateFrom = loadEnd - plan.slopeWindowMs / 2;
  const processRows = fleet.incarnations.map((inc) => {
    const live = !inc.ended;
    const finalLeader = live && inc.identity !== undefined && inc.identity === fleet.holder;
    const from = Math.max(slopeFrom, inc.startedAt, finalLeader ? (inc.leadingSince ?? 0) : 0);
    const rss = inc.rss.map((s) => ({ at: s.at, mib: s.rssMiB }));
    const heap = inc.gcs.map((g) => ({ at: g.at, mib: g.afterMiB }));
    const committed = inc.gcs.map((g) => ({ at: g.at, mib: g.committedAfterMiB }));
    const anon = inc.rss.map((s) => ({ at: s.at, mib: s.anonMiB }));
    // The window's second half too: a leader's working set warms up for minutes after a takeover.
    const late = Math.max(from, lateFrom);
    return {
      process: inc.label,
      pid: inc.pid,
      startedAtS: at(inc.startedAt),
      ended: inc.ended ? `${inc.ended.by === 'bench' ? 'SIGKILLed by the bench' : `exited on its own (${inc.ended.signal ?? `code ${inc.ended.code}`})`} at ${at(inc.ended.at)} s` : undefined,
      roleAtEnd: live ? (finalLeader ? 'leader' : 'standby') : 'gone',
      cpuSeconds: Number((inc.cpu - inc.cpuBase).toFixed(2)),
      rssMiB: extent(rss),
      slope: live ? slopeOver(rss, from, loadEnd, at) : undefined,
      fullGcs: inc.gcs.length,
      heapAfterFullGcMiB: extent(heap),
      heapAfterFullGcSlope: live ? slopeOver(heap, from, loadEnd, at) : undefined,
      heapCommittedAfterFullGcMiB: extent(committed),
      lateSlopes: live
        ? {
            rss: slopeOver(rss, late, loadEnd, at),
            anon: slopeOver(anon, late, loadEnd, at),
            heapAfterFullGc: slopeOver(heap, late, loadEnd, at),
            heapCommittedAfterFullGc: slopeOver(committed, late, loadEnd, at),
          }
        : undefined,
      // [s, RSS, RssAnon, RssFile (MiB), leader]
      samples: inc.rss.map((s) => [at(s.at), s.rssMiB, s.anonMiB, s.fileMiB, s.leader ? 1 : 0]),
      // [s, used, committed (MiB)]
      heapAfterFullGcSamples: inc.gcs.map((g) => [at(g.at), g.afterMiB, g.committedAfterMiB]),
    };
  });
  const leaderRow = processRows.find((r) => r.roleAtEnd === 'leader');
  const standbyRow = processRows.find((r) => r.roleAtEnd === 'standby');

  const result = {
    pairs,
    settings: `${VALVES.join(' ')}; --leader-elect=true, ${LEASE_DEFAULTS}`,
    schedule: {
      faults: plan.faults,
      rotationSeconds: rotation,
      loadSeconds: plan.durationMs / 1000,
      restartEverySeconds: plan.restartEveryMs / 1000,
      apiserverDownMs: APISERVER_DOWN_MS,
      killAtSeconds: plan.killAtMs / 1000,
      rssSampleEverySeconds: plan.sampleEveryMs / 1000,
      slopeWindowSeconds: plan.slopeWindowMs / 1000,
      reactionWindowSeconds: plan.reactionWindowMs / 1000,
      crashBackoffSeconds: CRASH_BACKOFF_MS / 1000,
      killedLeader: 'started again as a new standby once the takeover was seen',
    },
    load: { ...load, writesPerSecond: Number((load.writes / ((loadEnd - t0) / 1000)).toFixed(1)), changedPerRound: pairs / rotation },
    quiescence: { reached: quietAt !== undefined, seconds: quietAt === undefined ? undefined : Number(((quietAt - loadEnd) / 1000).toFixed(1)), timeoutSeconds: quiesceTimeoutMs / 1000 },
    finalStates: { of: pairs, ...states },
    valves,
    hrtoWrites: operatorWrites(events, ns, accepted),
    cpu: { seconds: Number(cpu.toFixed(2)), perChangeMs: Number(((cpu / load.writes) * 1000).toFixed(3)), over: `load start to every final state recorded + 2 s (${at(endAt)} s)` },
    leaderKill: kill,
    leaderChanges: fleet.changes.map((c) => ({ atS: at(c.seenAt), from: fleet.byIdentity(c.from)?.label ?? c.from, to: fleet.byIdentity(c.to)?.label ?? c.to, acquiredAtS: c.acquiredAt === undefined ? undefined : at(c.acquiredAt) })),
    restarts: restartRows,
    reactionAroundRestarts: { before: pooled('before'), after: pooled('after') },
    processes: processRows,
  };

  const slopeLabel = `over the last ${minutes(plan.slopeWindowMs)} of the load`;
  const figures: Figure[] = [
    figure(scenario, `final states lost (of ${pairs})`, states.lost, 'count', { goal: { max: 0 } }),
    figure(scenario, 'most triggers of one release in any 30 s (--min-trigger-interval)', mostPerInterval, 'count', { goal: { max: 1 } }),
    figure(scenario, `triggers in any 10 s, all releases (burst ${TRIGGER_BURST} + ${MAX_TRIGGERS_PER_SECOND}/s x 10 s)`, mostIn10s, 'count', { goal: { max: valves.overall.promise10s } }),
    figure(scenario, 'the same, away from restarts (kill to ready + 10 s left out)', awayIn10s, 'count', { goal: { max: valves.overall.promise10s } }),
    figure(scenario, 'CPU per change, both replicas', (cpu / load.writes) * 1000, 'ms'),
  ];
  if (restarts.length > 0) {
    figures.push(
      figure(scenario, 'reaction beyond the min-interval wait, p99, the window before the restarts', result.reactionAroundRestarts.before.beyondIntervalMs.p99, 'ms'),
      figure(scenario, 'reaction beyond the min-interval wait, p99, the window after the restarts', result.reactionAroundRestarts.after.beyondIntervalMs.p99, 'ms'),
    );
  }
  if (leaderRow?.rssMiB) {
    const every = `${pairs / rotation} sources/s, ${minutes(plan.durationMs)}`;
    figures.push(figure(scenario, `RSS of the final leader during the load (${every}): max`, leaderRow.rssMiB.max, 'MiB', { goal: { max: 100 }, original: 'flat 123 MiB (200 sources/s)' }));
  }
  const lateLabel = `over the last ${minutes(plan.slopeWindowMs / 2)} of the load`;
  for (const [role, row, since] of [['leader', leaderRow, ' (from its takeover if later)'], ['standby', standbyRow, '']] as const) {
    const slopes = [
      ['RSS slope', slopeLabel + since, row?.slope],
      ['heap after full GC, slope', slopeLabel + since, row?.heapAfterFullGcSlope],
      ['RSS slope', lateLabel, row?.lateSlopes?.rss],
      ['heap after full GC, slope', lateLabel, row?.lateSlopes?.heapAfterFullGc],
      ['RssAnon slope', lateLabel, row?.lateSlopes?.anon],
      ['heap committed after full GC, slope', lateLabel, row?.lateSlopes?.heapCommittedAfterFullGc],
    ] as const;
    for (const [what, over, slope] of slopes) if (slope) figures.push(figure(scenario, `${what} of the final ${role} ${over}`, slope.miBPerHour, 'MiB/h'));
  }
  if (kill) figures.push(figure(scenario, "takeover after the leader's SIGKILL (Lease acquireTime)", kill.takeoverSeconds, 's'));

  say(`${scenario}: ${pairs} pairs, ${minutes(plan.durationMs)} of load; ${result.settings}`);
  table([
    {
      'writes/s': result.load.writesPerSecond,
      writes: load.writes,
      'retried (attempts)': `${load.retriedWrites} (${load.retries})`,
      failed: load.failedWrites,
      'skipped rounds': load.skippedRounds,
      'quiet after load s': result.quiescence.seconds ?? `not in ${quiesceTimeoutMs / 1000}`,
      'final states lost': `${states.lost} of ${pairs}`,
      'CPU s (per change ms)': `${result.cpu.seconds} (${result.cpu.perChangeMs})`,
    },
  ]);
  if (states.lost > 0) say(`  lost: ${JSON.stringify(states)}`);
  say(
    `  valves: most triggers of one release in any ${MIN_INTERVAL_MS / 1000} s: ${mostPerInterval} (promise 1); shortest gap between two triggers of a release ${valves.perRelease.minGapSeconds} s, ` +
      `${gapsUnderInterval} gaps under ${(MIN_INTERVAL_MS - TOLERANCE_MS) / 1000} s; triggers ${all.length} (${valves.overall.meanPerSecondDuringLoad}/s during the load), most in any 1 s ${mostIn1s} (promise ${valves.overall.promise1s}; from ${valves.overall.densest1s}), in any 10 s ${mostIn10s} (promise ${valves.overall.promise10s}; from ${valves.overall.densest10s}); away from restarts ${awayIn1s} in 1 s, ${awayIn10s} in 10 s`,
  );
  say(`  leader changes: ${result.leaderChanges.map((c) => `${c.from ?? '-'} -> ${c.to ?? '-'} at ${c.atS} s`).join('; ')}`);
  say(`  restarts of kube-apiserver (reaction ms: write completed -> first trigger of its release after it; "beyond" = minus the min-interval wait; windows of ${windowMs / 1000} s before the kill / after ready):`);
  table(
    restartRows.map((r) => ({
      '#': r.n,
      'at s': r.atS,
      'unavailable s': r.unavailableSeconds,
      'leader changes': r.leaderChanges.join(', ') || 'none',
      'before: n / p50 / p99 beyond': `${r.before.writes - r.before.unmatched} / ${r.before.beyondIntervalMs.p50} / ${r.before.beyondIntervalMs.p99}`,
      'after: n / p50 / p99 beyond': `${r.after.writes - r.after.unmatched} / ${r.after.beyondIntervalMs.p50} / ${r.after.beyondIntervalMs.p99}`,
      'p99 raw before -> after': `${r.before.reactionMs.p99} -> ${r.after.reactionMs.p99}`,
      unmatched: `${r.before.unmatched} / ${r.after.unmatched}`,
    })),
  );
  say(`  processes (RSS every ${plan.sampleEveryMs / 1000} s from /proc, V8's heap after each full GC from --trace-gc; slopes ${slopeLabel}):`);
  table(
    processRows.map((r) => ({
      process: r.process,
      started: `${r.startedAtS} s`,
      ended: r.ended ?? '-',
      role: r.roleAtEnd,
      'CPU s': r.cpuSeconds,
      'RSS first / max / last MiB': showExtent(r.rssMiB),
      'slope MiB/h (from, samples, range)': showSlope(r.slope),
      'heap after full GC first / max / last MiB (GCs)': showExtent(r.heapAfterFullGcMiB, ` (${r.fullGcs})`),
      'its slope MiB/h (from, GCs, range)': showSlope(r.heapAfterFullGcSlope),
      'heap committed after full GC first / max / last MiB': showExtent(r.heapCommittedAfterFullGcMiB),
    })),
  );
  return { ...result, figures };
}
