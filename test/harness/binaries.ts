// Builds the Go programs the tests and the demo run from the Go module proxy, once per pinned
// version. Versions live only in hack/tools/go.mod (one module, so the libraries they share compile
// once); binaries are cached as .cache/bin/<name>-<version>.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cacheBin = path.join(projectRoot, '.cache', 'bin');
const toolsDir = path.join(projectRoot, 'hack', 'tools');

interface GoBinary {
  name: string;
  /** Module whose pinned version names the cached binary. */
  module: string;
  /** Package to build. */
  pkg: string;
  /** Linker -X flags stamping the version, as the project's own release build does. */
  stamp?: (version: string) => string[];
}

export const controlPlaneBinaries: GoBinary[] = [
  {
    name: 'kube-apiserver',
    module: 'k8s.io/kubernetes',
    pkg: 'k8s.io/kubernetes/cmd/kube-apiserver',
    stamp: (version) => {
      const [major, minor] = version.replace(/^v/, '').split('.');
      return ['k8s.io/component-base/version', 'k8s.io/client-go/pkg/version'].flatMap((pkg) => [
        `-X ${pkg}.gitVersion=${version}`,
        `-X ${pkg}.gitMajor=${major}`,
        `-X ${pkg}.gitMinor=${minor}`,
        `-X ${pkg}.gitTreeState=clean`,
      ]);
    },
  },
  { name: 'etcd', module: 'go.etcd.io/etcd/server/v3', pkg: 'go.etcd.io/etcd/server/v3' },
];

/** What renders the install manifests (config/, charts/) and checks the release workflows in the tests. */
export const deployBinaries = {
  kustomize: { name: 'kustomize', module: 'sigs.k8s.io/kustomize/kustomize/v5', pkg: 'sigs.k8s.io/kustomize/kustomize/v5' },
  // Helm 4, the Helm helm-controller itself embeds: its packages are compiled for Flux already.
  helm: { name: 'helm', module: 'helm.sh/helm/v4', pkg: 'helm.sh/helm/v4/cmd/helm' },
  actionlint: { name: 'actionlint', module: 'github.com/rhysd/actionlint', pkg: 'github.com/rhysd/actionlint/cmd/actionlint' },
} satisfies Record<string, GoBinary>;

/** Flux's own controllers, for the end-to-end tests. */
export const fluxBinaries = {
  sourceController: { name: 'source-controller', module: 'github.com/fluxcd/source-controller', pkg: 'github.com/fluxcd/source-controller' },
  helmController: { name: 'helm-controller', module: 'github.com/fluxcd/helm-controller', pkg: 'github.com/fluxcd/helm-controller' },
  notificationController: {
    name: 'notification-controller',
    module: 'github.com/fluxcd/notification-controller',
    pkg: 'github.com/fluxcd/notification-controller',
  },
} satisfies Record<string, GoBinary>;

async function go(cwd: string, args: string[]): Promise<string> {
  const env = { ...process.env, GOFLAGS: '-mod=mod -buildvcs=false', CGO_ENABLED: '0' };
  const { stdout } = await run('go', args, { cwd, env, maxBuffer: 64 * 1024 * 1024 });
  return stdout.trim();
}

const versions = new Map<string, Promise<string>>();

/** A pinned module's version; asked of the go command once per process (go.mod does not change mid-run). */
export function moduleVersion(module: string): Promise<string> {
  let version = versions.get(module);
  if (!version) {
    versions.set(module, (version = go(toolsDir, ['list', '-m', '-f', '{{.Version}}', module])));
    version.catch(() => versions.delete(module)); // a failed lookup is asked again next time
  }
  return version;
}

export interface Built {
  path: string;
  version: string;
}

const cachedPath = (bin: GoBinary, version: string): string => path.join(cacheBin, `${bin.name}-${version}`);

/**
 * The binaries, built from the Go module proxy unless their versions are in the cache already. The
 * missing ones are built by one `go build`: the Go command compiles the packages they share once
 * and links them in parallel.
 */
export async function ensureBinaries(bins: readonly GoBinary[], log: (msg: string) => void = () => {}): Promise<Built[]> {
  const pinned = await Promise.all(bins.map((bin) => moduleVersion(bin.module)));
  const group = bins.map((bin, i) => ({ bin, version: pinned[i]! }));
  const built = (): boolean => group.every(({ bin, version }) => existsSync(cachedPath(bin, version)));
  if (!built()) await withBuildLock(log, built, () => build(group, log));
  return group.map(({ bin, version }) => ({ path: cachedPath(bin, version), version }));
}

export async function ensureBinary(bin: GoBinary, log: (msg: string) => void = () => {}): Promise<Built> {
  return (await ensureBinaries([bin], log))[0]!;
}

/** The file `go build -o dir/` writes: the package's last path element, skipping a major version (/v3). */
export function goBinaryName(pkg: string): string {
  const parts = pkg.split('/');
  const last = parts.at(-1)!;
  return /^v\d+$/.test(last) && parts.length > 1 ? parts.at(-2)! : last;
}

const timesFile = path.join(cacheBin, 'build-times.json');

function readTimes(): Record<string, number> {
  try {
    return JSON.parse(readFileSync(timesFile, 'utf8')) as Record<string, number>;
  } catch {
    return {};
  }
}

const buildKey = (names: readonly string[]): string => [...names].sort().join(', ');

/** How long building these binaries took on this machine last time, in seconds (undefined: never built). */
export function lastBuildSeconds(bins: readonly GoBinary[]): number | undefined {
  return readTimes()[buildKey(bins.map((b) => b.name))];
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * One build at a time across processes (the test runner, its test files, the demo): a lock file
 * holding the builder's pid. A waiter stops waiting as soon as its binaries are in the cache: the
 * lock may pass straight on to a build of other tools it does not need. A lock whose process died
 * is taken over.
 */
async function withBuildLock(log: (msg: string) => void, built: () => boolean, work: () => Promise<void>): Promise<void> {
  mkdirSync(cacheBin, { recursive: true });
  const lock = path.join(cacheBin, '.lock');
  let said = false;
  for (;;) {
    try {
      writeFileSync(lock, String(process.pid), { flag: 'wx' });
      break;
    } catch {
      const holder = Number(readFileSync(lock, 'utf8').trim());
      if (!alive(holder)) {
        rmSync(lock, { force: true });
        continue;
      }
      if (built()) return;
      if (!said) log(`waiting for process ${holder}, which is building test tools`);
      said = true;
      await sleep(1000);
    }
  }
  try {
    return await work();
  } finally {
    rmSync(lock, { force: true });
  }
}

async function build(group: readonly { bin: GoBinary; version: string }[], log: (msg: string) => void): Promise<void> {
  const todo = group.filter(({ bin, version }) => !existsSync(cachedPath(bin, version)));
  if (todo.length === 0) return; // built by another process while this one waited
  const what = todo.map(({ bin, version }) => `${bin.name} ${version}`).join(', ');
  const key = buildKey(group.map(({ bin }) => bin.name));
  const last = readTimes()[key];
  const expect = last === undefined ? 'first build on this machine: minutes on 2 cores' : `last time ${minutes(last)}`;
  log(`building ${what} from the Go module proxy (${expect})`);
  const started = Date.now();
  // A line every 30 s: a long build is never silent.
  const progress = setInterval(() => log(`still building ${what}: ${minutes((Date.now() - started) / 1000)} so far${last === undefined ? '' : ` of about ${minutes(last)}`}`), 30_000);
  progress.unref();
  const out = mkdtempSync(path.join(cacheBin, '.build-'));
  try {
    const ldflags = ['-s', '-w', ...todo.flatMap(({ bin, version }) => bin.stamp?.(version) ?? [])].join(' ');
    try {
      // No DWARF: the binaries are stripped anyway, and not generating it cut a cold build by 10 %.
      await go(toolsDir, ['build', '-trimpath', '-gcflags=all=-dwarf=false', `-ldflags=${ldflags}`, '-o', out + path.sep, ...todo.map(({ bin }) => bin.pkg)]);
    } catch (err) {
      const { stderr = '' } = err as { stderr?: string };
      const tail = stderr.trim().split('\n').slice(-15).join('\n');
      throw new Error(`go build of ${what} failed: look at the versions pinned in hack/tools/go.mod\n${tail}`, { cause: err });
    }
    // Rename is atomic: an interrupted build never leaves a half-written binary under a cached name.
    for (const { bin, version } of todo) renameSync(path.join(out, goBinaryName(bin.pkg)), cachedPath(bin, version));
  } finally {
    clearInterval(progress);
    rmSync(out, { recursive: true, force: true });
  }
  const seconds = Math.round((Date.now() - started) / 1000);
  // Remembered for the whole group only: a partial build says nothing of the next full one.
  if (todo.length === group.length) writeFileSync(timesFile, `${JSON.stringify({ ...readTimes(), [key]: seconds }, null, 2)}\n`);
  log(`built ${what} in ${minutes(seconds)}`);
}

export const minutes = (seconds: number): string => (seconds < 90 ? `${Math.round(seconds)} s` : `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`);

export interface ControlPlaneBinaries {
  kubeApiserver: string;
  etcd: string;
  versions: Record<string, string>;
}

export async function ensureControlPlaneBinaries(log: (msg: string) => void = () => {}): Promise<ControlPlaneBinaries> {
  const [apiserver, etcd] = await ensureBinaries(controlPlaneBinaries, log);
  return { kubeApiserver: apiserver!.path, etcd: etcd!.path, versions: { 'kube-apiserver': apiserver!.version, etcd: etcd!.version } };
}

/** A pinned module's source tree in the Go module cache (downloaded if needed). */
export async function moduleSource(module: string): Promise<{ dir: string; version: string }> {
  const raw = await go(toolsDir, ['mod', 'download', '-json', module]);
  const info = JSON.parse(raw) as { Dir?: string; Version?: string; Error?: string };
  if (!info.Dir || !info.Version) throw new Error(`go mod download ${module}: ${info.Error ?? raw}`);
  return { dir: info.Dir, version: info.Version };
}

/** Flux's own HelmRelease CRD, read from the pinned helm-controller module in the Go module cache. */
export async function helmReleaseCrdPath(): Promise<{ path: string; version: string }> {
  const source = await moduleSource('github.com/fluxcd/helm-controller');
  const crd = path.join(source.dir, 'config', 'crd', 'bases', 'helm.toolkit.fluxcd.io_helmreleases.yaml');
  if (!existsSync(crd)) throw new Error(`helm-controller ${source.version} has no CRD at ${crd}`);
  return { path: crd, version: source.version };
}
