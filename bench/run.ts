// npm run bench: hrto's speed, memory, CPU and API traffic on the local control plane. A benchmark,
// not a test: it prints figures, each beside its floor or baseline and issue 12's goal, and writes
// them to bench/results/<date>.json with the machine and the versions; it passes or fails on nothing
// but errors.
//
//   npm run bench [-- SCENARIO...]       no names: the default list below; `all`: every scenario
//
// Default (about 11 minutes on 2 shared cores once the Go binaries are built; `all`: about 25):
//   idle       VmRSS of hrto (cluster-wide, defaults) 10 s after ready on an empty cluster, beside a
//              bare `node -e "setInterval(()=>{},1000)"` measured in the same run; goal 64 MiB; then
//              % of one core over 60 s with 1,700 sources + 1,700 HelmReleases, nothing changing
//              (and over the minute after it)
//   reaction   500 changes at 25/s over 50 pairs, --debounce=0s --min-trigger-interval=0s
//              --max-triggers-per-second=0 --kube-api-qps=0 (UNTHROTTLED): reaction time from the audit log (ConfigMap write
//              completed -> hrto's HelmRelease PATCH received) beside a minimal watch->PATCH loop in
//              the bench; client-side latency (write response -> requestedAt seen on a watch) beside
//              the floor with hrto stopped (the bench PATCHes the release on each write's response)
//   cpu        CPU-seconds (/proc utime+stime) and peak RSS (VmRSS every 50 ms) for 1,000 changes over
//              100 releases, UNTHROTTLED, from adoption complete (+2 s) to every final
//              state recorded; then the same 1,000 changes with the default settings
//   upgrade    with Flux's real source-controller and helm-controller (builds them once)
//   firststart hrto's first start on a cluster: installed into 1,000 deployed releases (forced
//              upgrades from the audit log, time until every source is digested, CPU, peak RSS; the
//              default heap and --max-old-space-size=128), then 10,000 + 10,000 cluster-wide, every
//              source adopted at the default --kube-api-qps and unlimited (the digests removed in
//              between): digest patches and Events counted, RSS adopted and settled
// Opt-in (slow; name them or `all`):
//   memory     VmRSS with 0, 10,000 and 50,000 unlabeled 4 KiB ConfigMaps/Secrets (about 6 minutes)
//   sustained  fleet's day with the faults off: 200 sources each changed once a second for 4
//              minutes, two replicas, default valves; RSS of each replica, final states lost, the
//              valves, CPU per change (about 5 minutes)
//   inflight   --max-upgrades-in-flight's count with 10,000 releases and 300 triggers waiting for a
//              slot: CPU per second of waiting, beside the rescan it replaced (in process, seconds)
//   hub        2,000 HelmReleases in one namespace under one ConfigMap's three-ring rollout plan
//              (helm-controller simulated): CPU and time to hold 1,980 and trigger the canary ring,
//              to trigger ring a after the canary's bake, CPU while held, RSS (about 2 minutes)
// Opt-in by name only (not in `all`: about 40 minutes on its own):
//   fleet      the fleet day (bench/scenarios/fleet.ts): 2,000 pairs, two replicas with leader
//              election (default lease timings) and default valves, for 30 minutes a tenth of the
//              sources changed every second, kube-apiserver restarted every 5 minutes, the leader
//              SIGKILLed at minute 12 (a standby takes over; the killed replica comes back as a
//              standby). Final states lost, triggers per release per 30 s and overall, RSS every 30 s
//              with its slope over the last 20 minutes, CPU per change, reaction around each
//              restart. A smoke run: HRTO_BENCH_FLEET_MINUTES=4 HRTO_BENCH_FLEET_PAIRS=200 npm run
//              bench -- fleet (the restarts, the kill and the windows scale with the duration);
//              HRTO_BENCH_FLEET_ROTATION=<s> (10) and HRTO_BENCH_FLEET_FAULTS=off change the load
//
// hrto runs as the built CLI in its own process: HRTO_ENTRY in bench/hrto.ts (HRTO_BENCH_ENTRY
// overrides it). Memory and CPU are read from /proc/<pid>, never from hrto's /metrics. Every
// scenario works in its own namespace and deletes what it created when it ends.
//
// HRTO_BENCH_GO_PEER=<binary>: the original Go operator (nebius/helmrelease-trigger-operator, built
// outside the project with `go build ./cmd`) as a peer. idle, reaction, cpu, memory and firststart's
// 10,000 + 10,000 start then run it too, after hrto, on the same control plane and workload (sources
// keyed nebius.ai/..., hrto with --key-domain=nebius.ai; releases marked deployed, the only ones it
// patches), and a last table prints what both measured with the ratio (bench/operators.ts). Without
// it: hrto alone, as before.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CoreV1Api, CustomObjectsApi, KubeConfig, VersionApi } from '@kubernetes/client-node';
import { projectRoot } from '../test/harness/binaries.js';
import { installHelmReleaseCrd } from '../test/harness/cluster.js';
import { ControlPlane } from '../test/harness/controlplane.js';
import { AuditLog } from './audit.js';
import { type Figure, figureRows, type Versus, versusRows } from './figures.js';
import { bundleOfThisRun, hrtoEntry } from './hrto.js';
import { RawKube } from './kube.js';
import { type Ctx, say, type ScenarioResult, table } from './lib.js';
import { GO_PEER_PATH, goOriginal, goPeerInfo } from './operators.js';
import { clkTck } from './proc.js';
import { firstStartScenarios } from './scenarios/firststart.js';
import { fleetScenarios } from './scenarios/fleet.js';
import { runtimeScenarios } from './scenarios/runtime.js';
import { hubScenarios } from './scenarios/hub.js';
import { rolloutScenarios } from './scenarios/rollout.js';
import { throughputScenarios } from './scenarios/throughput.js';

/** One scenario's result with a second measurement of the same workload folded in under `key`. */
function folded(first: ScenarioResult, key: string, second: ScenarioResult): ScenarioResult {
  const { figures = [], versus = [], ...rest } = second;
  return { ...first, [key]: rest, figures: [...(first.figures ?? []), ...figures], versus: [...(first.versus ?? []), ...versus] };
}

const { idlecpu, burst, ...parts } = { ...runtimeScenarios, ...throughputScenarios };
const scenarios: Record<string, (ctx: Ctx) => Promise<ScenarioResult>> = {
  ...parts,
  // Each workload measured once: idle memory and idle CPU, a burst unthrottled and with the defaults.
  idle: async (ctx) => folded(await parts.idle!(ctx), 'cpuOverAMinute', await idlecpu!(ctx)),
  cpu: async (ctx) => folded(await parts.cpu!(ctx), 'defaults', await burst!(ctx)),
  ...firstStartScenarios,
  ...fleetScenarios,
  ...rolloutScenarios,
  ...hubScenarios,
};
const DEFAULT = ['idle', 'reaction', 'cpu', 'upgrade', 'firststart'];
const ALL = ['idle', 'reaction', 'cpu', 'memory', 'sustained', 'upgrade', 'firststart', 'inflight', 'hub'];

const selected = process.argv.slice(2).filter((a) => a !== '--');
const names = selected.length === 0 ? DEFAULT : selected.includes('all') ? ALL : selected;
for (const name of names) if (!scenarios[name]) throw new Error(`unknown scenario ${name}; one of ${Object.keys(scenarios).join(', ')}, all`);

// The peer's binary is checked before the control plane starts.
const peer = GO_PEER_PATH === undefined ? undefined : goOriginal(GO_PEER_PATH);

// One audit log file for the whole run: kube-apiserver would rotate it at 100 MB (the memory
// scenario alone writes more), and the scenarios read it from byte offsets.
// hrto's bundle copied now, right after `npm run build`, before another build in the tree replaces it.
await bundleOfThisRun();

const cp = new ControlPlane({ log: (m) => say(`[controlplane] ${m}`), apiserverFlags: ['--audit-log-maxsize=0'] });
let kube: RawKube | undefined;
try {
  await cp.start();
  const kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  const crd = await installHelmReleaseCrd(kc);
  kube = await RawKube.connect(kc);
  const ctx: Ctx = { cp, kc, core: kc.makeApiClient(CoreV1Api), custom: kc.makeApiClient(CustomObjectsApi), kube, audit: new AuditLog(cp.auditLogPath), ...(peer ? { peer } : {}) };
  const commit = (() => {
    try {
      const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: projectRoot }).toString().trim();
      const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: projectRoot }).toString().trim() !== '';
      return dirty ? `${head}+dirty src` : head;
    } catch {
      return 'unknown';
    }
  })();
  const environment = {
    date: new Date().toISOString(),
    commit,
    hrto: (JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { version: string }).version,
    hrtoEntry: hrtoEntry(),
    hrtoEntryOverridden: Boolean(process.env.HRTO_BENCH_ENTRY),
    node: process.version,
    kubeApiserver: (await kc.makeApiClient(VersionApi).getCode()).gitVersion,
    helmReleaseCrd: crd,
    cpu: `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'unknown'}`,
    memoryGiB: Number((os.totalmem() / 2 ** 30).toFixed(1)),
    loadAverageAtStart: os.loadavg().map((l) => Number(l.toFixed(2))),
    clkTck: clkTck(),
    os: `${os.type()} ${os.release()}`,
    scenarios: names,
    ...(GO_PEER_PATH === undefined ? {} : { goPeer: goPeerInfo(GO_PEER_PATH) }),
  };
  say(`machine: ${environment.cpu}, ${environment.memoryGiB} GiB, load ${environment.loadAverageAtStart.join(' ')}; node ${environment.node}; kube-apiserver ${environment.kubeApiserver}; hrto ${environment.hrto} from ${environment.hrtoEntry}${environment.hrtoEntryOverridden ? ' (HRTO_BENCH_ENTRY; the work tree is at ' + commit + ')' : ` (${commit})`}\n`);
  if (environment.goPeer) say(`peer: the original Go operator ${environment.goPeer.path} (sha256 ${environment.goPeer.sha256.slice(0, 12)}), ${environment.goPeer.flags}\n`);
  const results: Record<string, unknown> = {};
  const summary: Figure[] = [];
  const sideBySide: Versus[] = [];
  const durations: Record<string, number> = {};
  // The machine is shared: the 1-minute load average around each scenario says how noisy it was.
  const load = () => Number(os.loadavg()[0]!.toFixed(2));
  const loads: Record<string, { start: number; end: number }> = {};
  for (const name of names) {
    const started = Date.now();
    const loadAtStart = load();
    const result = await scenarios[name]!(ctx);
    durations[name] = Math.round((Date.now() - started) / 1000);
    loads[name] = { start: loadAtStart, end: load() };
    results[name] = result;
    summary.push(...(result.figures ?? []));
    sideBySide.push(...(result.versus ?? []));
    say(`  (${name}: ${durations[name]} s; 1-minute load average ${loads[name].start} -> ${loads[name].end} on ${os.cpus().length} cores)\n`);
  }
  if (summary.length > 0) {
    say("summary: issue 12's figures (ratio = value / baseline; the original Go operator's figures are issue 12's, not this run's)");
    table(figureRows(summary));
    say('');
  }
  if (sideBySide.length > 0) {
    say('side by side: the original Go operator (HRTO_BENCH_GO_PEER) and hrto, this run, one after the other on the same control plane and workload (ratio = hrto / original)');
    table(versusRows(sideBySide));
    say('');
  }
  mkdirSync(path.join(projectRoot, 'bench', 'results'), { recursive: true });
  const file = path.join(projectRoot, 'bench', 'results', `${environment.date.slice(0, 19).replace(/[:T]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify({ environment: { ...environment, loadAverageAtEnd: os.loadavg().map((l) => Number(l.toFixed(2))), scenarioSeconds: durations, scenarioLoadAverage: loads }, results, summary, ...(sideBySide.length > 0 ? { sideBySide } : {}) }, null, 2)}\n`);
  say(`written to ${path.relative(projectRoot, file)}`);
} finally {
  kube?.close();
  await cp.stop();
}
process.exit(0);
