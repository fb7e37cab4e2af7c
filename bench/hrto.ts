// hrto as deployed: the production bundle in its own process, started with the image's Node.js flags
// (read from the Dockerfile's ENTRYPOINT) and, by default, the in-cluster credentials a pod uses (a
// real ServiceAccount token and CA in a folder), with its metrics and probes on loopback.
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { projectRoot } from '../test/harness/binaries.js';
import { mountServiceAccount, type ServiceAccountMount, TOKEN_LIFETIME_SECONDS } from '../test/harness/incluster.js';
import { freePort } from '../test/harness/processes.js';
import { killChild, stopChild } from './proc.js';

// THE hrto entry the bench runs: the production bundle. HRTO_BENCH_ENTRY overrides it for one run (for
// example a build of another commit in a scratch directory) without editing the file.
const HRTO_ENTRY = process.env.HRTO_BENCH_ENTRY || path.join(projectRoot, 'dist', 'hrto.mjs');

export function hrtoEntry(): string {
  return HRTO_ENTRY;
}

let runEntry: Promise<string> | undefined;
/**
 * What every process of this run starts: a copy of the entry's folder (the bundle needs nothing
 * outside it), taken once, as early as run.ts can. The work tree is shared: another `npm run build`
 * removes dist/ and writes it again, and a process started meanwhile (even the first, or one of
 * fleet's replicas started again late in its run) found no hrto there. The copy is taken only from
 * an entry unchanged for 2 s and still unchanged after the copy, so never from a build under way.
 */
export function bundleOfThisRun(): Promise<string> {
  runEntry ??= (async () => {
    const deadline = Date.now() + 120_000;
    for (;;) {
      const before = existsSync(HRTO_ENTRY) ? statSync(HRTO_ENTRY).mtimeMs : undefined;
      if (before !== undefined && Date.now() - before > 2000) {
        const dir = mkdtempSync(path.join(tmpdir(), 'hrto-bench-bundle-'));
        cpSync(path.dirname(HRTO_ENTRY), dir, { recursive: true });
        const after = existsSync(HRTO_ENTRY) ? statSync(HRTO_ENTRY).mtimeMs : undefined;
        if (after === before) {
          process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
          return path.join(dir, path.basename(HRTO_ENTRY));
        }
        rmSync(dir, { recursive: true, force: true });
      }
      if (Date.now() > deadline) throw new Error(`bench: no hrto at ${HRTO_ENTRY}: build it (npm run build), point HRTO_ENTRY in bench/hrto.ts at the build's entry, or set HRTO_BENCH_ENTRY`);
      await sleep(500);
    }
  })();
  return runEntry;
}

/**
 * The Node.js flags hrto runs with in a pod: the image's ENTRYPOINT (`["node", FLAGS..., "dist/hrto.mjs"]`),
 * then the Deployment's NODE_OPTIONS (the old-space limit that goes with the memory limit), then any
 * of HRTO_BENCH_NODE_FLAGS (space separated; for example `--cpu-prof --cpu-prof-dir=/tmp/prof`, which
 * Node.js refuses in NODE_OPTIONS).
 */
export function imageNodeFlags(): string[] {
  const line = readFileSync(path.join(projectRoot, 'Dockerfile'), 'utf8').split('\n').find((l) => l.startsWith('ENTRYPOINT'));
  const words = line ? (JSON.parse(line.slice('ENTRYPOINT'.length)) as string[]) : [];
  const split = (s: string | undefined) => (s ?? '').split(' ').filter(Boolean);
  return [...words.slice(1).filter((w) => w.startsWith('--')), ...split(deploymentNodeOptions()), ...split(process.env.HRTO_BENCH_NODE_FLAGS)];
}

function deploymentNodeOptions(): string | undefined {
  const deployment = parseYaml(readFileSync(path.join(projectRoot, 'config', 'manager', 'deployment.yaml'), 'utf8')) as {
    spec: { template: { spec: { containers: { env?: { name: string; value?: string }[] }[] } } };
  };
  return deployment.spec.template.spec.containers[0]?.env?.find((e) => e.name === 'NODE_OPTIONS')?.value;
}

/** One full (mark-compact) GC of V8's heap, from `--trace-gc`: the heap's used size before and after it. */
export interface FullGc {
  at: number;
  beforeMiB: number;
  afterMiB: number;
  /** What V8 holds for its heap after it (used, and free space in its pages): what RSS follows. */
  committedAfterMiB: number;
}
const MARK_COMPACT = /: Mark-Compact(?: \(reduce\))? ([\d.]+) \([\d.]+\) -> ([\d.]+) \(([\d.]+)\) MB/;

/** How hrto finds the cluster: `incluster` (what a pod does; default) or `kubeconfig`. */
export type Credentials = 'incluster' | 'kubeconfig';
export const DEFAULT_CREDENTIALS: Credentials = process.env.HRTO_BENCH_CREDENTIALS === 'kubeconfig' ? 'kubeconfig' : 'incluster';

/**
 * Like a kubelet, which refreshes a projected token at 80 % of its lifetime, the bench writes a fresh
 * one before it expires. Without it, every hrto of a run longer than the token (the fleet day) is
 * refused at once.
 */
const TOKEN_REFRESH_MS = 0.8 * TOKEN_LIFETIME_SECONDS * 1000;

const mounts = new Map<string, Promise<ServiceAccountMount>>();
/** The bench's ServiceAccount folder for `kubeconfig`'s cluster (made once), as a pod has it mounted. */
export function serviceAccount(kubeconfig: string): Promise<ServiceAccountMount> {
  let mount = mounts.get(kubeconfig);
  if (!mount) {
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfig);
    mount = mountServiceAccount(kc, 'hrto-bench', 'hrto');
    mounts.set(kubeconfig, mount);
    void mount.then((m) => {
      setInterval(() => {
        m.rotate().catch((err: Error) => process.stderr.write(`bench: could not refresh the ServiceAccount token: ${err.message}\n`));
      }, TOKEN_REFRESH_MS).unref();
    });
  }
  return mount;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Nothing started here outlives the bench: a crash or Ctrl-C ends the hrto processes still running
// (the harness's signal handlers call process.exit, which runs this hook).
const live = new Set<HrtoProcess>();
process.on('exit', () => {
  for (const h of live) h.killNow();
});

export interface HrtoOptions {
  /** Extra environment for this process (merged over the bench's; LOG_LEVEL defaults to warn). */
  env?: NodeJS.ProcessEnv;
  credentials?: Credentials;
  /** Runs it with `--trace-gc` and keeps each full GC in `fullGcs`. */
  traceGc?: boolean;
}

/** hrto's log lines kept (the last ones): enough to say why a process ended on its own. */
const KEPT_LINES = 20;

export class HrtoProcess {
  private child?: ChildProcess;
  metricsPort = 0;
  probePort = 0;
  /** Date.now() at spawn. */
  startedAt = 0;
  /** performance.now() at spawn. */
  startedPerf = 0;
  /** Its full GCs so far, with the `traceGc` option. */
  readonly fullGcs: FullGc[] = [];
  /** Resolves when the process ends, with its exit code or the signal that ended it (set by start). */
  exited?: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Its last log lines (warn and above: the bench runs it at LOG_LEVEL=warn), GC traces left out. */
  readonly lastLines: string[] = [];

  constructor(
    private readonly kubeconfig: string,
    private readonly args: string[],
    private readonly options: HrtoOptions = {},
  ) {}

  get pid(): number {
    const pid = this.child?.pid;
    if (!pid) throw new Error('bench: hrto is not running');
    return pid;
  }

  async start(): Promise<void> {
    const entry = await bundleOfThisRun();
    this.metricsPort = await freePort();
    this.probePort = await freePort();
    this.startedAt = Date.now();
    this.startedPerf = performance.now();
    const credentials = this.options.credentials ?? DEFAULT_CREDENTIALS;
    // In a pod: no kubeconfig, the service account's folder. Leader election is off unless `args`
    // turn it on (a later --leader-elect wins: the fleet scenario runs two replicas).
    const inherited = { ...process.env };
    delete inherited.KUBECONFIG;
    const where = credentials === 'incluster' ? { args: [], env: { ...inherited, ...(await serviceAccount(this.kubeconfig)).env } } : { args: ['--kubeconfig', this.kubeconfig], env: process.env };
    const traceGc = this.options.traceGc === true;
    this.child = spawn(
      process.execPath,
      [...imageNodeFlags(), ...(traceGc ? ['--trace-gc'] : []), entry, ...where.args, '--leader-elect=false', `--metrics-bind-address=127.0.0.1:${this.metricsPort}`, `--health-probe-bind-address=127.0.0.1:${this.probePort}`, ...this.args],
      { stdio: ['ignore', 'pipe', 'inherit'], env: { ...where.env, LOG_LEVEL: 'warn', ...this.options.env } },
    );
    createInterface({ input: this.child.stdout! }).on('line', (l) => {
      const m = MARK_COMPACT.exec(l);
      if (m) this.fullGcs.push({ at: Date.now(), beforeMiB: Number(m[1]), afterMiB: Number(m[2]), committedAfterMiB: Number(m[3]) });
      else if (!l.startsWith('[') && this.lastLines.push(l) > KEPT_LINES) this.lastLines.shift();
    });
    live.add(this);
    const child = this.child;
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        live.delete(this);
        resolve({ code, signal });
      }),
    );
  }

  /** Milliseconds from spawn until /readyz answers 200 (caches synced). */
  async ready(timeoutMs = 600_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.child?.exitCode !== null) throw new Error(`bench: hrto exited with ${this.child?.exitCode} before it was ready; its last lines:\n${this.lastLines.join('\n')}`);
      const ok = await fetch(`http://127.0.0.1:${this.probePort}/readyz`)
        .then((r) => r.ok)
        .catch(() => false);
      if (ok) return Date.now() - this.startedAt;
      if (Date.now() > deadline) throw new Error('bench: timed out waiting for hrto ready');
      await sleep(100);
    }
  }

  /** hrto's own /metrics (a scrape allocates in hrto: never used for memory or CPU figures). */
  async metrics(): Promise<Map<string, number>> {
    const text = await (await fetch(`http://127.0.0.1:${this.metricsPort}/metrics`)).text();
    return new Map(
      text
        .split('\n')
        .filter((l) => l && !l.startsWith('#'))
        .map((l) => [l.slice(0, l.lastIndexOf(' ')), Number(l.slice(l.lastIndexOf(' ') + 1))] as const),
    );
  }

  stop(): Promise<void> {
    return stopChild(this.child);
  }

  killNow(): void {
    killChild(this.child);
  }
}
