// Builds the test control plane's binaries from the Go module proxy, once per pinned version.
// Versions live only in hack/tools/*/go.mod; binaries are cached as .cache/bin/<name>-<version>.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cacheBin = path.join(projectRoot, '.cache', 'bin');
const toolsDir = (name: string): string => path.join(projectRoot, 'hack', 'tools', name);

interface GoBinary {
  name: string;
  /** The tools module (hack/tools/<dir>) that pins it. */
  dir: string;
  /** Module whose pinned version names the cached binary. */
  module: string;
  /** Package to build. */
  pkg: string;
  /** Linker -X flags stamping the version, as the project's own release build does. */
  stamp?: (version: string) => string[];
}

const controlPlaneBinaries: GoBinary[] = [
  {
    name: 'kube-apiserver',
    dir: 'controlplane',
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
  { name: 'etcd', dir: 'controlplane', module: 'go.etcd.io/etcd/server/v3', pkg: 'go.etcd.io/etcd/server/v3' },
];

/** What renders the install manifests (config/, charts/) and checks the release workflows in the tests. */
export const deployBinaries = {
  kustomize: { name: 'kustomize', dir: 'deploy', module: 'sigs.k8s.io/kustomize/kustomize/v5', pkg: 'sigs.k8s.io/kustomize/kustomize/v5' },
  helm: { name: 'helm', dir: 'deploy', module: 'helm.sh/helm/v3', pkg: 'helm.sh/helm/v3/cmd/helm' },
  actionlint: { name: 'actionlint', dir: 'deploy', module: 'github.com/rhysd/actionlint', pkg: 'github.com/rhysd/actionlint/cmd/actionlint' },
} satisfies Record<string, GoBinary>;

/** Flux's own controllers, for the end-to-end tests: one tools module, so shared libraries compile once. */
export const fluxBinaries = {
  sourceController: { name: 'source-controller', dir: 'flux', module: 'github.com/fluxcd/source-controller', pkg: 'github.com/fluxcd/source-controller' },
  helmController: { name: 'helm-controller', dir: 'flux', module: 'github.com/fluxcd/helm-controller', pkg: 'github.com/fluxcd/helm-controller' },
  notificationController: {
    name: 'notification-controller',
    dir: 'flux',
    module: 'github.com/fluxcd/notification-controller',
    pkg: 'github.com/fluxcd/notification-controller',
  },
} satisfies Record<string, GoBinary>;

async function go(cwd: string, args: string[]): Promise<string> {
  const env = { ...process.env, GOFLAGS: '-mod=mod -buildvcs=false', CGO_ENABLED: '0' };
  const { stdout } = await run('go', args, { cwd, env, maxBuffer: 64 * 1024 * 1024 });
  return stdout.trim();
}

export async function moduleVersion(moduleDir: string, module: string): Promise<string> {
  return go(moduleDir, ['list', '-m', '-f', '{{.Version}}', module]);
}

export interface Built {
  path: string;
  version: string;
}

const cachedPath = (bin: GoBinary, version: string): string => path.join(cacheBin, `${bin.name}-${version}`);

/**
 * The binaries, built from the Go module proxy unless their versions are in the cache already.
 * The missing binaries of one tools module are built by one `go build`: the Go command compiles the
 * packages they share once and links them in parallel.
 */
export async function ensureBinaries(bins: readonly GoBinary[], log: (msg: string) => void = () => {}): Promise<Built[]> {
  const versions = await Promise.all(bins.map((bin) => moduleVersion(toolsDir(bin.dir), bin.module)));
  const missing = bins.filter((bin, i) => !existsSync(cachedPath(bin, versions[i]!)));
  for (const dir of new Set(missing.map((bin) => bin.dir))) {
    const group = missing.filter((bin) => bin.dir === dir);
    await buildModule(dir, group.map((bin) => ({ bin, version: versions[bins.indexOf(bin)]! })), log);
  }
  return bins.map((bin, i) => ({ path: cachedPath(bin, versions[i]!), version: versions[i]! }));
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

async function buildModule(dir: string, group: readonly { bin: GoBinary; version: string }[], log: (msg: string) => void): Promise<void> {
  mkdirSync(cacheBin, { recursive: true });
  const what = group.map(({ bin, version }) => `${bin.name} ${version}`).join(', ');
  log(`building ${what} from the Go module proxy (hack/tools/${dir}; once per version; minutes on a cold cache)`);
  const started = Date.now();
  const out = mkdtempSync(path.join(cacheBin, `.build-${dir}-`));
  try {
    const ldflags = ['-s', '-w', ...group.flatMap(({ bin, version }) => bin.stamp?.(version) ?? [])].join(' ');
    try {
      await go(toolsDir(dir), ['build', '-trimpath', `-ldflags=${ldflags}`, '-o', out + path.sep, ...group.map(({ bin }) => bin.pkg)]);
    } catch (err) {
      const { stderr = '' } = err as { stderr?: string };
      const tail = stderr.trim().split('\n').slice(-15).join('\n');
      throw new Error(`go build of ${what} failed: look at hack/tools/${dir}/go.mod\n${tail}`, { cause: err });
    }
    // Rename is atomic: an interrupted build never leaves a half-written binary under a cached name.
    for (const { bin, version } of group) renameSync(path.join(out, goBinaryName(bin.pkg)), cachedPath(bin, version));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
  log(`built ${what} in ${((Date.now() - started) / 1000).toFixed(0)}s`);
}

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
export async function moduleSource(dir: string, module: string): Promise<{ dir: string; version: string }> {
  const raw = await go(toolsDir(dir), ['mod', 'download', '-json', module]);
  const info = JSON.parse(raw) as { Dir?: string; Version?: string; Error?: string };
  if (!info.Dir || !info.Version) throw new Error(`go mod download ${module}: ${info.Error ?? raw}`);
  return { dir: info.Dir, version: info.Version };
}

/** Flux's own HelmRelease CRD, read from the pinned helm-controller module in the Go module cache. */
export async function helmReleaseCrdPath(): Promise<{ path: string; version: string }> {
  const source = await moduleSource('flux', 'github.com/fluxcd/helm-controller');
  const crd = path.join(source.dir, 'config', 'crd', 'bases', 'helm.toolkit.fluxcd.io_helmreleases.yaml');
  if (!existsSync(crd)) throw new Error(`helm-controller ${source.version} has no CRD at ${crd}`);
  return { path: crd, version: source.version };
}
