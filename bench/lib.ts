// What the scenarios share: the context, fixtures (namespaces of source/HelmRelease pairs), watches
// that see triggers and recorded digests as they happen, and small helpers.
import type { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import type { ControlPlane } from '../test/harness/controlplane.js';
import type { AuditLog } from './audit.js';
import type { Figure, Versus } from './figures.js';
import { statusOf } from '../src/kube/api.js';
import { MERGE_PATCH, type RawKube, type RawObject } from './kube.js';
import { DEFAULT_WORKLOAD, HRTO, hrtoOn, type Operator, type OperatorProcess, PEER_WORKLOAD, type Workload } from './operators.js';
import { memory } from './proc.js';

export const HR_API = '/apis/helm.toolkit.fluxcd.io/v2';
export const HR = { group: 'helm.toolkit.fluxcd.io', version: 'v2', plural: 'helmreleases' } as const;
export const { watch: WATCH, names: NAMES, namespace: NAMESPACE, digest: DIGEST } = DEFAULT_WORKLOAD.keys;
export const REQUESTED_AT = 'reconcile.fluxcd.io/requestedAt';
export const FORCE_AT = 'reconcile.fluxcd.io/forceAt';
/** The bench's field manager on its own writes, so the audit log tells them apart. */
export const BENCH_MANAGER = 'hrto-bench';

/**
 * hrto's own speed: no debounce, minimum interval, trigger throttle or client-side API limit in the
 * way. (At the default --kube-api-qps=50, 25 changes a second with no debounce make about 75
 * requests a second, a trigger, its Event and a digest each, and queue: p99 2.8 s in one run.)
 */
export const UNTHROTTLED = ['--debounce=0s', '--min-trigger-interval=0s', '--max-triggers-per-second=0', '--kube-api-qps=0'];

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** The baseline of figures taken from issue 12's measurements of the original Go operator. */
export const GO = 'original (Go), issue 12';
/** How long an operator is left alone before its RSS counts as settled. */
export const IDLE_SETTLE_MS = 10_000;
export const say = (s: string) => console.log(s);

export interface Ctx {
  cp: ControlPlane;
  kc: KubeConfig;
  core: CoreV1Api;
  custom: CustomObjectsApi;
  kube: RawKube;
  audit: AuditLog;
  /** The original Go operator, when HRTO_BENCH_GO_PEER names its binary. */
  peer?: Operator;
}

export interface ScenarioResult extends Record<string, unknown> {
  figures?: Figure[];
  /** With a peer: figures measured for both in this run. */
  versus?: Versus[];
}

/**
 * The operators a compared scenario measures, one after the other: hrto alone on the default
 * workload (no peer: as before), or hrto and the Go original, both on the peer's workload.
 */
export function compared(ctx: Ctx): Operator[] {
  return ctx.peer ? [hrtoOn(PEER_WORKLOAD), ctx.peer] : [HRTO];
}

export async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 600_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

export async function inBatches<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

export function percentiles(values: readonly number[]): { n: number; p50: number; p90: number; p99: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const r = (n: number) => Number(n.toFixed(3));
  return { n: sorted.length, p50: r(quantile(sorted, 0.5)), p90: r(quantile(sorted, 0.9)), p99: r(quantile(sorted, 0.99)), max: r(sorted.at(-1) ?? NaN) };
}

export const mib = (n: number) => Number(n.toFixed(1));

export function table(rows: Record<string, string | number>[]): void {
  if (rows.length === 0) return;
  const keys = Object.keys(rows[0]!);
  const cells = [keys, ...rows.map((r) => keys.map((k) => String(r[k])))];
  const widths = keys.map((_, i) => Math.max(...cells.map((c) => c[i]!.length)));
  for (const c of cells) say(`  ${c.map((v, i) => v.padEnd(widths[i]!)).join('  ')}`);
}

/** A table row, named by its operator when the Go original is measured too (no peer: as before). */
export function byOperator<R extends Record<string, unknown>>(ctx: Ctx, op: Operator, row: R): R | ({ operator: string } & R) {
  return ctx.peer ? { operator: op.label, ...row } : row;
}

/** Some text of about `bytes` bytes (for 4 KiB values). */
export function filler(bytes: number, seed: number): string {
  const line = `k${seed}: ${'x'.repeat(60)}\n`;
  return line.repeat(Math.ceil(bytes / line.length)).slice(0, bytes);
}

export async function createNamespace(ctx: Ctx, ns: string): Promise<void> {
  await ctx.kube.request('POST', '/api/v1/namespaces', { body: { metadata: { name: ns } } }).catch((err: unknown) => {
    if (statusOf(err) !== 409) throw err;
  });
}

export function helmRelease(ns: string, name: string, spec: Record<string, unknown> = {}): RawObject {
  return {
    apiVersion: 'helm.toolkit.fluxcd.io/v2',
    kind: 'HelmRelease',
    metadata: { name, namespace: ns },
    spec: { interval: '1h', chart: { spec: { chart: 'c', sourceRef: { kind: 'HelmRepository', name: 'r' } } }, ...spec },
  };
}

/**
 * A namespace with `n` HelmReleases r0..r<n-1>, each with its own labeled ConfigMap of the same name,
 * keyed for `workload` (default: hrto's default domain); with `workload.deployed`, each release is
 * then marked deployed after its source was written.
 */
export async function namespaceWithPairs(ctx: Ctx, ns: string, n: number, opts: { parallelism?: number; workload?: Workload } = {}): Promise<string[]> {
  await createNamespace(ctx, ns);
  const names = Array.from({ length: n }, (_, i) => `r${i}`);
  const parallelism = opts.parallelism ?? 64;
  const { keys, deployed } = opts.workload ?? DEFAULT_WORKLOAD;
  await inBatches(names, parallelism, (name) => ctx.kube.request('POST', `${HR_API}/namespaces/${ns}/helmreleases`, { body: helmRelease(ns, name) }));
  await inBatches(names, parallelism, (name) =>
    ctx.kube.request('POST', `/api/v1/namespaces/${ns}/configmaps`, {
      query: { fieldManager: BENCH_MANAGER },
      body: {
        metadata: { name, namespace: ns, labels: { [keys.watch]: 'true' }, annotations: { [keys.names]: name, [keys.namespace]: ns } },
        data: { 'values.yaml': 'v: 0\n' },
      },
    }),
  );
  if (deployed) await markDeployed(ctx, ns, names, Date.now());
  return names;
}

/**
 * Marks each HelmRelease as helm-controller leaves a deployed one: status.history[0] (every field the
 * v2 CRD requires, status `deployed`) and Ready=True, through the status subresource, more than a
 * second after `sourcesWrittenAt` (managedFields times have one-second resolution and hrto counts a
 * tie as newer). Returns the deploy time.
 */
export async function markDeployed(ctx: Ctx, ns: string, names: readonly string[], sourcesWrittenAt: number): Promise<string> {
  const wait = sourcesWrittenAt + 1100 - Date.now();
  if (wait > 0) await sleep(wait);
  const deployed = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const hex = (seed: string) => Buffer.from(seed.padEnd(32, '0').slice(0, 32)).toString('hex');
  await inBatches(names, 64, (name) =>
    ctx.kube.request('PATCH', `${HR_API}/namespaces/${ns}/helmreleases/${name}/status`, {
      contentType: MERGE_PATCH,
      body: {
        status: {
          observedGeneration: 1,
          history: [
            {
              name,
              namespace: ns,
              version: 1,
              chartName: 'c',
              chartVersion: '1.0.0',
              configDigest: `sha256:${hex(`config-${name}`)}`,
              digest: `sha256:${hex(`release-${name}`)}`,
              firstDeployed: deployed,
              lastDeployed: deployed,
              status: 'deployed',
            },
          ],
          conditions: [{ type: 'Ready', status: 'True', reason: 'InstallSucceeded', message: `Helm install succeeded for release ${ns}/${name}.v1 with chart c@1.0.0`, lastTransitionTime: deployed, observedGeneration: 1 }],
        },
      },
    }),
  );
  const sample = await ctx.kube.request<{ status?: { history?: { lastDeployed?: string }[] } }>('GET', `${HR_API}/namespaces/${ns}/helmreleases/${names[0]}`);
  if (sample.status?.history?.[0]?.lastDeployed !== deployed) throw new Error(`bench: the HelmRelease status did not stick: ${JSON.stringify(sample.status)}`);
  return deployed;
}

/** A content write of a source by the bench (a merge patch of `data`, as a user's edit). */
export function writeSource(ctx: Ctx, ns: string, name: string, values: string, manager = BENCH_MANAGER): Promise<RawObject> {
  return ctx.kube.request('PATCH', `/api/v1/namespaces/${ns}/configmaps/${name}`, {
    query: { fieldManager: manager },
    contentType: MERGE_PATCH,
    body: { data: { 'values.yaml': values } },
  });
}

/** The trigger hrto sends (force mode: requestedAt and forceAt, one value), sent by the bench. */
export function triggerRelease(ctx: Ctx, ns: string, name: string, at: string, manager: string): Promise<RawObject> {
  return ctx.kube.request('PATCH', `${HR_API}/namespaces/${ns}/helmreleases/${name}`, {
    query: { fieldManager: manager },
    contentType: MERGE_PATCH,
    body: { metadata: { annotations: { [REQUESTED_AT]: at, [FORCE_AT]: at } } },
  });
}

/** Labeled ConfigMaps of a namespace whose digest, as `op` records it, matches their content (one list). */
export async function recordedCount(ctx: Ctx, ns: string, op: Operator = HRTO): Promise<number> {
  const { items } = await ctx.kube.list(`/api/v1/namespaces/${ns}/configmaps`, { labelSelector: `${op.workload.keys.watch}=true` });
  return items.filter((cm) => op.recorded(cm)).length;
}

/**
 * The same count kept up to date by a watch, so the moment the last digest lands is seen within
 * one watch event, without a list every 100 ms loading the API server beside hrto. After `expect`,
 * a source counts only once it is recorded AND shows the expected `values.yaml` (its final write),
 * so a watch lagging behind the writes cannot count a digest of an earlier content.
 */
export async function trackRecorded(ctx: Ctx, ns: string, op: Operator = HRTO): Promise<{
  count: () => number;
  expect: (finalValues: ReadonlyMap<string, string>) => void;
  waitFor: (n: number, timeoutMs?: number) => Promise<number>;
  stop: () => void;
}> {
  const state = new Map<string, { recorded: boolean; values: string | undefined }>();
  let expected: ReadonlyMap<string, string> | undefined;
  let count = 0;
  const counts = (s: { recorded: boolean; values: string | undefined } | undefined, name: string) =>
    s !== undefined && s.recorded && (expected === undefined || !expected.has(name) || expected.get(name) === s.values);
  const waiters: { n: number; resolve: (at: number) => void }[] = [];
  const settle = () => {
    const now = performance.now();
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (count >= waiters[i]!.n) {
        waiters[i]!.resolve(now);
        waiters.splice(i, 1);
      }
    }
  };
  const informer = await ctx.kube.informer(`/api/v1/namespaces/${ns}/configmaps`, { labelSelector: `${op.workload.keys.watch}=true` }, (type, obj) => {
    const name = obj.metadata?.name ?? '';
    const before = counts(state.get(name), name);
    if (type === 'DELETED') state.delete(name);
    else state.set(name, { recorded: op.recorded(obj), values: obj.data?.['values.yaml'] });
    count += (counts(state.get(name), name) ? 1 : 0) - (before ? 1 : 0);
    settle();
  });
  return {
    count: () => count,
    expect: (finalValues) => {
      expected = finalValues;
      count = [...state].filter(([name, s]) => counts(s, name)).length;
      settle();
    },
    /** performance.now() when `n` sources were first seen recorded at once. */
    waitFor: (n, timeoutMs = 600_000) =>
      new Promise<number>((resolve, reject) => {
        if (count >= n) return resolve(performance.now());
        const timer = setTimeout(() => reject(new Error(`bench: ${count} of ${n} digests recorded in ${ns} after ${timeoutMs} ms`)), timeoutMs);
        waiters.push({
          n,
          resolve: (at) => {
            clearTimeout(timer);
            resolve(at);
          },
        });
      }),
    stop: informer.stop,
  };
}

/** Every distinct requestedAt a namespace's HelmReleases receive, with performance.now() when the watch saw it. */
export async function watchTriggers(ctx: Ctx, ns: string): Promise<{ seen: Map<string, { at: number; requestedAt: string }[]>; stop: () => void }> {
  const seen = new Map<string, { at: number; requestedAt: string }[]>();
  const informer = await ctx.kube.informer(`${HR_API}/namespaces/${ns}/helmreleases`, {}, (type, obj) => {
    const at = performance.now();
    const requestedAt = obj.metadata?.annotations?.[REQUESTED_AT];
    const name = obj.metadata?.name;
    if (type === 'DELETED' || !requestedAt || !name) return;
    const list = seen.get(name) ?? [];
    if (list.at(-1)?.requestedAt !== requestedAt) list.push({ at, requestedAt });
    seen.set(name, list);
  });
  return { seen, stop: informer.stop };
}

/**
 * Removes what a scenario created in its namespace (ConfigMaps, Secrets, HelmReleases, Events, and
 * Leases: fleet's replicas elect their leader there), so later scenarios that watch the whole
 * cluster (idle, memory) start from an empty one. The namespace itself stays: without
 * kube-controller-manager, a deleted namespace would stay Terminating.
 */
export async function cleanup(ctx: Ctx, ns: string): Promise<void> {
  for (const path of [`/api/v1/namespaces/${ns}/configmaps`, `/api/v1/namespaces/${ns}/secrets`, `${HR_API}/namespaces/${ns}/helmreleases`, `/api/v1/namespaces/${ns}/events`, `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases`]) {
    // A large collection can outlast the API server's request timeout (504): delete again until empty.
    for (let attempt = 1; ; attempt++) {
      const failed = await ctx.kube.request('DELETE', path).then(
        () => undefined,
        (err: Error) => err,
      );
      const left = await ctx.kube.request<{ items?: unknown[] }>('GET', path, { query: { limit: 1 } }).then(
        (l) => l.items?.length ?? 0,
        () => 1,
      );
      if (left === 0) break;
      if (attempt >= 10) {
        say(`  cleanup ${path}: objects left after ${attempt} attempts${failed ? ` (${failed.message.slice(0, 120)})` : ''}`);
        break;
      }
    }
  }
}

/** Labeled sources and HelmReleases in the whole cluster: what a cluster-wide hrto caches. */
export async function clusterWatched(ctx: Ctx): Promise<{ labeledConfigMaps: number; labeledSecrets: number; helmReleases: number }> {
  const [cms, secrets, hrs] = await Promise.all([
    ctx.kube.list('/api/v1/configmaps', { labelSelector: `${WATCH}=true` }),
    ctx.kube.list('/api/v1/secrets', { labelSelector: `${WATCH}=true` }),
    ctx.kube.list(`${HR_API}/helmreleases`),
  ]);
  return { labeledConfigMaps: cms.items.length, labeledSecrets: secrets.items.length, helmReleases: hrs.items.length };
}

/** One content write by the bench: wall clock and performance.now() before sending, performance.now() at the response. */
export interface Write {
  name: string;
  startWall: number;
  start: number;
  done: number;
}

/**
 * Client-side latency of each write: from its response to the first requestedAt seen on the watch
 * for its HelmRelease after it was sent, with a requestedAt no older than the write (so a trigger
 * of an earlier change is never taken for it).
 */
export function clientLatencies(writes: readonly Write[], seen: ReadonlyMap<string, readonly { at: number; requestedAt: string }[]>): { latencies: number[]; unmatched: number } {
  const latencies: number[] = [];
  let unmatched = 0;
  for (const w of writes) {
    const hit = (seen.get(w.name) ?? []).find((s) => s.at >= w.start && Date.parse(s.requestedAt) >= w.startWall - 1);
    if (hit) latencies.push(hit.at - w.done);
    else unmatched++;
  }
  return { latencies, unmatched };
}

/**
 * `changes` content writes at `rate` per second, one at a time, round-robin over `names`; each
 * value is unique (`tag`). `afterWrite` runs on each response before the next write is due.
 */
export async function pacedWrites(ctx: Ctx, ns: string, names: readonly string[], changes: number, rate: number, tag: string, afterWrite?: (w: Write) => Promise<unknown>): Promise<Write[]> {
  const written: Write[] = [];
  const t0 = performance.now();
  for (let i = 0; i < changes; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const name = names[i % names.length]!;
    const startWall = Date.now();
    const start = performance.now();
    await writeSource(ctx, ns, name, `v: ${tag}-${i}\n`);
    const w = { name, startWall, start, done: performance.now() };
    written.push(w);
    if (afterWrite) await afterWrite(w);
  }
  return written;
}

export type Tracker = Awaited<ReturnType<typeof trackRecorded>>;

/**
 * Most scenarios' frame: `pairs` labeled sources and their HelmReleases in `ns` (keyed for `op`'s
 * workload), `op` started (hrto with `args`) and every source adopted; then `measure` runs, and
 * whatever happens the tracker and the operator are stopped and the namespace cleaned up.
 */
export async function withAdoptedPairs<T, P extends OperatorProcess>(
  ctx: Ctx,
  ns: string,
  pairs: number,
  op: Operator<P>,
  args: readonly string[],
  measure: (run: { names: string[]; tracker: Tracker; h: P }) => Promise<T>,
): Promise<T> {
  const names = await namespaceWithPairs(ctx, ns, pairs, { workload: op.workload });
  const tracker = await trackRecorded(ctx, ns, op);
  const h = op.process(ctx, [`--watch-namespaces=${ns}`, ...args]);
  try {
    await h.start();
    await h.ready();
    await tracker.waitFor(names.length);
    return await measure({ names, tracker, h });
  } finally {
    tracker.stop();
    await h.stop();
    await cleanup(ctx, ns);
  }
}

/** An operator's RSS after `IDLE_SETTLE_MS` of nothing happening, with its start-up peak. */
export async function settledMemory(h: OperatorProcess): Promise<{ rssMiB: number; hwmMiB: number; anonMiB: number; fileMiB: number }> {
  await sleep(IDLE_SETTLE_MS);
  const m = memory(h.pid);
  return { rssMiB: mib(m.rssMiB), hwmMiB: mib(m.hwmMiB), anonMiB: mib(m.anonMiB), fileMiB: mib(m.fileMiB) };
}
