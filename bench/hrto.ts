// hrto as deployed: the production bundle in its own process, started with the image's Node.js flags
// (read from the Dockerfile's ENTRYPOINT) and, by default, the in-cluster credentials a pod uses (a
// real ServiceAccount token and CA in a folder), with its metrics and probes on loopback.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { projectRoot } from '../test/harness/binaries.js';
import { mountServiceAccount, type ServiceAccountMount } from '../test/harness/incluster.js';
import { freePort } from '../test/harness/processes.js';
import { killChild, stopChild } from './proc.js';

// THE hrto entry the bench runs: the production bundle. HRTO_BENCH_ENTRY overrides it for one run (for
// example a build of another commit in a scratch directory) without editing the file.
const HRTO_ENTRY = process.env.HRTO_BENCH_ENTRY || path.join(projectRoot, 'dist', 'hrto.mjs');

export function hrtoEntry(): string {
  return HRTO_ENTRY;
}

/** The Node.js flags of the image's ENTRYPOINT (`["node", FLAGS..., "dist/hrto.mjs"]`). */
export function imageNodeFlags(): string[] {
  const line = readFileSync(path.join(projectRoot, 'Dockerfile'), 'utf8').split('\n').find((l) => l.startsWith('ENTRYPOINT'));
  const words = line ? (JSON.parse(line.slice('ENTRYPOINT'.length)) as string[]) : [];
  return words.slice(1).filter((w) => w.startsWith('--'));
}

/** How hrto finds the cluster: `incluster` (what a pod does; default) or `kubeconfig`. */
export type Credentials = 'incluster' | 'kubeconfig';
export const DEFAULT_CREDENTIALS: Credentials = process.env.HRTO_BENCH_CREDENTIALS === 'kubeconfig' ? 'kubeconfig' : 'incluster';

const mounts = new Map<string, Promise<ServiceAccountMount>>();
function serviceAccount(kubeconfig: string): Promise<ServiceAccountMount> {
  let mount = mounts.get(kubeconfig);
  if (!mount) {
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfig);
    mount = mountServiceAccount(kc, 'hrto-bench', 'hrto');
    mounts.set(kubeconfig, mount);
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
}

export class HrtoProcess {
  private child?: ChildProcess;
  metricsPort = 0;
  probePort = 0;
  /** Date.now() at spawn. */
  startedAt = 0;
  /** performance.now() at spawn. */
  startedPerf = 0;

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
    if (!existsSync(HRTO_ENTRY)) throw new Error(`bench: no hrto at ${HRTO_ENTRY}: build it (npm run build), point HRTO_ENTRY in bench/hrto.ts at the build's entry, or set HRTO_BENCH_ENTRY`);
    this.metricsPort = await freePort();
    this.probePort = await freePort();
    this.startedAt = Date.now();
    this.startedPerf = performance.now();
    const credentials = this.options.credentials ?? DEFAULT_CREDENTIALS;
    // In a pod: no kubeconfig, the service account's folder; leader election stays off, as before.
    const inherited = { ...process.env };
    delete inherited.KUBECONFIG;
    const where = credentials === 'incluster' ? { args: [], env: { ...inherited, ...(await serviceAccount(this.kubeconfig)).env } } : { args: ['--kubeconfig', this.kubeconfig], env: process.env };
    this.child = spawn(
      process.execPath,
      [...imageNodeFlags(), HRTO_ENTRY, ...where.args, '--leader-elect=false', `--metrics-bind-address=127.0.0.1:${this.metricsPort}`, `--health-probe-bind-address=127.0.0.1:${this.probePort}`, ...this.args],
      { stdio: ['ignore', 'ignore', 'inherit'], env: { ...where.env, LOG_LEVEL: 'warn', ...this.options.env } },
    );
    live.add(this);
    this.child.once('exit', () => live.delete(this));
  }

  /** Milliseconds from spawn until /readyz answers 200 (caches synced). */
  async ready(timeoutMs = 600_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.child?.exitCode !== null) throw new Error(`bench: hrto exited with ${this.child?.exitCode} before it was ready`);
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
