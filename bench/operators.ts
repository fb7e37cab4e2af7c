// Which operator a scenario measures: hrto, or the original Go operator
// (github.com/nebius/helmrelease-trigger-operator) as an optional peer, built outside the project and
// named by HRTO_BENCH_GO_PEER=<path of its binary>. With a peer, the compared scenarios (idle,
// reaction, cpu, memory, firststart) run both, one after the other, on the same workload and the same
// control plane, and print them side by side; without one, every scenario runs hrto alone as before.
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { build } from 'esbuild';
import { contentDigest } from '../src/digest.js';
import { DEFAULT_KEY_DOMAIN } from '../src/keys.js';
import { type AuditEvent, type AuditLog, type AuditMark, byHrto } from './audit.js';
import { type HrtoOptions, HrtoProcess, imageNodeFlags, serviceAccount } from './hrto.js';
import type { RawObject } from './kube.js';
import type { Ctx } from './lib.js';
import { killChild, stopChild } from './proc.js';
import { projectRoot } from '../test/harness/binaries.js';
import { freePort } from '../test/harness/processes.js';

/** The label and annotation keys of a fixture's sources. */
export interface WorkloadKeys {
  watch: string;
  names: string;
  namespace: string;
  digest: string;
}

/** What a fixture is made of, so that both operators act on it. */
export interface Workload {
  domain: string;
  keys: WorkloadKeys;
  /**
   * Each HelmRelease carries a deployed status.history[0], written through the status subresource
   * after its source (the Go original patches no other release).
   */
  deployed: boolean;
}

function workload(domain: string, deployed: boolean): Workload {
  return {
    domain,
    keys: { watch: `${domain}/helmrelease-trigger-operator`, names: `${domain}/helmreleases-name`, namespace: `${domain}/helmreleases-namespace`, digest: `${domain}/config-digest` },
    deployed,
  };
}

/** Every scenario's workload without a peer (as before): hrto's default key domain, releases without status. */
export const DEFAULT_WORKLOAD = workload(DEFAULT_KEY_DOMAIN, false);
/** The compared scenarios' workload with a peer: the Go original's key domain, releases deployed. */
export const PEER_WORKLOAD = workload('nebius.ai', true);

/** A running operator, as the scenarios read it: its pid for /proc, its lifecycle. */
export interface OperatorProcess {
  readonly pid: number;
  /** performance.now() at spawn. */
  readonly startedPerf: number;
  start(): Promise<void>;
  /** Milliseconds from spawn until its caches are synced (hrto: /readyz answers 200). */
  ready(): Promise<number>;
  stop(): Promise<void>;
}

export interface Operator<P extends OperatorProcess = OperatorProcess> {
  /** The key of its results: `hrto`, `original` or `floor`. */
  readonly id: 'hrto' | 'original' | 'floor';
  readonly label: string;
  readonly workload: Workload;
  /** The source carries this operator's digest of its current content (it has acted on it). */
  recorded: (source: RawObject) => boolean;
  /** A request it sent, in the API server's audit log. */
  sent: (e: AuditEvent) => boolean;
  /**
   * A process of it against `kubeconfig`'s cluster. `hrtoArgs` are hrto's flags (namespace scope,
   * debounce, throttles, client-side limit): the Go original has none of these settings and always
   * watches the whole cluster, with no debounce, throttle or client-side rate limit.
   */
  process(ctx: Ctx, hrtoArgs?: readonly string[], options?: HrtoOptions): P;
}

/** `--key-domain` for `w` when it is not the default (so hrto's flags stay as before without a peer). */
const keyDomainArgs = (w: Workload): string[] => (w.domain === DEFAULT_KEY_DOMAIN ? [] : [`--key-domain=${w.domain}`]);
/** The source carries hrto's digest of its current content. */
const hrtoDigestOn = (w: Workload) => (cm: RawObject) => cm.metadata?.annotations?.[w.keys.digest] === contentDigest({ data: cm.data, binaryData: cm.binaryData });

/** hrto on `w`. */
export function hrtoOn(w: Workload): Operator<HrtoProcess> {
  return {
    id: 'hrto',
    label: 'hrto',
    workload: w,
    recorded: hrtoDigestOn(w),
    sent: byHrto,
    process: (ctx, hrtoArgs = [], options) => new HrtoProcess(ctx.cp.kubeconfigPath, [...keyDomainArgs(w), ...hrtoArgs], options),
  };
}

/** hrto on the default workload: every scenario without a peer, and the scenarios never compared. */
export const HRTO = hrtoOn(DEFAULT_WORKLOAD);

// --- The Go original -------------------------------------------------------------------------------

/** HRTO_BENCH_GO_PEER: the path of the Go original's binary (`go build ./cmd` of its repository). */
export const GO_PEER_PATH = process.env.HRTO_BENCH_GO_PEER || undefined;

/**
 * The peer's argv[0], so its User-Agent (client-go's default, `<basename of argv[0]>/<version> ...`)
 * tells its requests apart in the audit log. It sends no fieldManager.
 */
const GO_AGENT = 'hrto-bench-go-original';
const GO_SENT = (e: AuditEvent) => (e.userAgent ?? '').startsWith(`${GO_AGENT}/`);
const LISTS_QUIET_MS = 500;

/**
 * The Go original's digest of a ConfigMap (its `<domain>/config-digest`): adler32, as unpadded hex,
 * of Kubernetes' DeepHashObject text of `data` (go-spew, sorted keys, strings as they are):
 * `(map[string]string)map[k1:v1 k2:v2]`, or `(map[string]string)<nil>` without data. The bench waits
 * for it on every source before each phase, so a wrong rule fails the run instead of skewing it.
 */
export function goDigest(data: Readonly<Record<string, string>> | undefined): string {
  const text = data ? `(map[string]string)map[${Object.keys(data).sort().map((k) => `${k}:${data[k]}`).join(' ')}]` : '(map[string]string)<nil>';
  let a = 1;
  let b = 0;
  for (const byte of Buffer.from(text, 'utf8')) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  return (((b << 16) | a) >>> 0).toString(16);
}

/**
 * A peer the bench runs as a child process: its pid for /proc, stopped with SIGTERM (SIGKILL after
 * 40 s), and killed if the bench exits first.
 */
abstract class PeerProcess implements OperatorProcess {
  private child?: ChildProcess;
  startedPerf = 0;

  constructor(private readonly what: string) {}

  abstract start(): Promise<void>;
  abstract ready(): Promise<number>;

  get pid(): number {
    const pid = this.child?.pid;
    if (!pid) throw new Error(`bench: ${this.what} is not running`);
    return pid;
  }

  /** Records `child` as this peer's process, until it exits. */
  protected running(child: ChildProcess): ChildProcess {
    this.child = child;
    runningPeers.add(this);
    child.once('exit', () => runningPeers.delete(this));
    return child;
  }

  protected exitCode(): number | null | undefined {
    return this.child?.exitCode;
  }

  stop(): Promise<void> {
    return stopChild(this.child);
  }

  killNow(): void {
    killChild(this.child);
  }
}

const runningPeers = new Set<PeerProcess>();
process.on('exit', () => {
  for (const p of runningPeers) p.killNow();
});

/**
 * The Go original as its image runs it (controller-runtime defaults: 5 concurrent reconciles per
 * controller, HelmRelease autodiscovery on, no client-side rate limit), with the bench's kubeconfig
 * (it has no in-cluster path outside a pod), its metrics server off (its default), leader election
 * off, its health probes on a free loopback port, and --log-level=warn, as hrto runs in the bench
 * (LOG_LEVEL=warn). Its stdout (a line per ConfigMap reconcile, printed whatever the level) is dropped.
 */
export class GoPeerProcess extends PeerProcess {
  private probePort = 0;
  private startMark?: AuditMark;
  private startedAt = 0;

  constructor(
    private readonly binary: string,
    private readonly kubeconfig: string,
    private readonly audit: AuditLog,
  ) {
    super('the Go original');
  }

  async start(): Promise<void> {
    this.probePort = await freePort();
    this.startMark = this.audit.mark();
    this.startedAt = Date.now();
    this.startedPerf = performance.now();
    this.running(
      spawn(
        this.binary,
        ['--kubeconfig', this.kubeconfig, '--leader-elect=false', '--metrics-bind-address=0', `--health-probe-bind-address=127.0.0.1:${this.probePort}`, '--log-level=warn'],
        { argv0: GO_AGENT, stdio: ['ignore', 'ignore', 'inherit'] },
      ),
    );
  }

  /**
   * Its /readyz is a ping that answers before its caches sync, so ready is also: the audit log shows
   * its lists of ConfigMaps, Secrets and HelmReleases completed (each informer lists, then watches),
   * and no further list of it for LISTS_QUIET_MS (the pages of a long list follow each other).
   */
  async ready(timeoutMs = 300_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    let probed = false;
    let lists = 0;
    let listsSeenAt = 0;
    for (;;) {
      const exitCode = this.exitCode();
      if (exitCode !== null) throw new Error(`bench: the Go original exited with ${exitCode} before it was ready`);
      probed ||= await fetch(`http://127.0.0.1:${this.probePort}/readyz`)
        .then((r) => r.ok)
        .catch(() => false);
      if (probed) {
        const mine = this.audit.since(this.startMark!).filter((e) => e.verb === 'list' && GO_SENT(e));
        const listed = new Set(mine.map((e) => e.objectRef?.resource));
        if (mine.length !== lists) {
          lists = mine.length;
          listsSeenAt = Date.now();
        }
        if (['configmaps', 'secrets', 'helmreleases'].every((r) => listed.has(r)) && Date.now() - listsSeenAt >= LISTS_QUIET_MS) return listsSeenAt - this.startedAt;
      }
      if (Date.now() > deadline) throw new Error('bench: timed out waiting for the Go original to be ready (its lists in the audit log)');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export function goOriginal(binary: string): Operator<GoPeerProcess> {
  if (!existsSync(binary)) throw new Error(`bench: HRTO_BENCH_GO_PEER=${binary}: no such file (build it outside the project: go build -o <path> ./cmd in a checkout of nebius/helmrelease-trigger-operator)`);
  return {
    id: 'original',
    label: 'original (Go)',
    workload: PEER_WORKLOAD,
    recorded: (cm) => cm.metadata?.annotations?.[PEER_WORKLOAD.keys.digest] === goDigest(cm.data),
    sent: GO_SENT,
    process: (ctx) => new GoPeerProcess(binary, ctx.cp.kubeconfigPath, ctx.audit),
  };
}

/** What the results record of the peer: the binary (path, sha256) and how it was run. */
export function goPeerInfo(binary: string): { path: string; sha256: string; userAgent: string; flags: string } {
  return {
    path: path.resolve(binary),
    sha256: createHash('sha256').update(readFileSync(binary)).digest('hex'),
    userAgent: `${GO_AGENT}/...`,
    flags: '--kubeconfig <bench> --leader-elect=false --metrics-bind-address=0 --health-probe-bind-address=127.0.0.1:<free> --log-level=warn',
  };
}

// --- The Node.js floor ---------------------------------------------------------------------------

/** The floor's User-Agent (bench/floor.ts sends it), so the audit log tells its requests apart. */
export const FLOOR_AGENT = 'hrto-bench-floor';

let floorBundle: Promise<string> | undefined;
/** bench/floor.ts bundled as hrto is (one ESM file, no node_modules), once per run. */
function floorEntry(): Promise<string> {
  floorBundle ??= (async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hrto-bench-floor-'));
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    const outfile = path.join(dir, 'floor.mjs');
    await build({ entryPoints: [path.join(projectRoot, 'bench', 'floor.ts')], bundle: true, platform: 'node', format: 'esm', target: 'node20', minify: true, outfile, logLevel: 'warning' });
    return outfile;
  })();
  return floorBundle;
}

/** bench/floor.ts as hrto runs: the image's and Deployment's Node.js flags, in-cluster credentials. */
export class FloorProcess extends PeerProcess {
  private readyAt?: Promise<number>;

  constructor(
    private readonly kubeconfig: string,
    private readonly args: readonly string[],
  ) {
    super('the Node.js floor');
  }

  async start(): Promise<void> {
    const [entry, account] = await Promise.all([floorEntry(), serviceAccount(this.kubeconfig)]);
    const env = { ...process.env, ...account.env };
    delete env.KUBECONFIG;
    const startedAt = Date.now();
    this.startedPerf = performance.now();
    const child = this.running(spawn(process.execPath, [...imageNodeFlags(), entry, ...this.args], { stdio: ['ignore', 'pipe', 'inherit'], env }));
    this.readyAt = new Promise((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (l) => l === 'ready' && resolve(Date.now() - startedAt));
      child.once('exit', (code) => reject(new Error(`bench: the Node.js floor exited with ${code}`)));
    });
    this.readyAt.catch(() => undefined);
  }

  ready(): Promise<number> {
    if (!this.readyAt) throw new Error('bench: the Node.js floor was not started');
    return this.readyAt;
  }
}

/**
 * The Node.js floor on `w`: what the original's traffic costs in bare Node.js (bench/floor.ts);
 * with `events`, hrto's Triggered Event per trigger too.
 */
export function nodeFloorOn(w: Workload, { events = false } = {}): Operator<FloorProcess> {
  return {
    id: 'floor',
    label: events ? 'Node.js floor + Events' : 'Node.js floor',
    workload: w,
    recorded: hrtoDigestOn(w),
    sent: (e) => e.userAgent === FLOOR_AGENT,
    process: (ctx, hrtoArgs = []) => new FloorProcess(ctx.cp.kubeconfigPath, [...keyDomainArgs(w), ...(events ? ['--floor-events'] : []), ...hrtoArgs]),
  };
}
