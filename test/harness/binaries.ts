// Builds the test control plane's binaries from the Go module proxy, once per pinned version.
// Versions live only in hack/tools/*/go.mod; binaries are cached as .cache/bin/<name>-<version>.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
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

/** What renders the install manifests (config/, charts/) in the tests. */
export const deployBinaries = {
  kustomize: { name: 'kustomize', dir: 'deploy', module: 'sigs.k8s.io/kustomize/kustomize/v5', pkg: 'sigs.k8s.io/kustomize/kustomize/v5' },
  helm: { name: 'helm', dir: 'deploy', module: 'helm.sh/helm/v3', pkg: 'helm.sh/helm/v3/cmd/helm' },
} satisfies Record<string, GoBinary>;

/** Flux's own controllers, for the end-to-end tests. */
export const fluxBinaries = {
  sourceController: { name: 'source-controller', dir: 'flux-source', module: 'github.com/fluxcd/source-controller', pkg: 'github.com/fluxcd/source-controller' },
  helmController: { name: 'helm-controller', dir: 'flux', module: 'github.com/fluxcd/helm-controller', pkg: 'github.com/fluxcd/helm-controller' },
} satisfies Record<string, GoBinary>;

async function go(cwd: string, args: string[]): Promise<string> {
  const env = { ...process.env, GOFLAGS: '-mod=mod -buildvcs=false', CGO_ENABLED: '0' };
  const { stdout } = await run('go', args, { cwd, env, maxBuffer: 64 * 1024 * 1024 });
  return stdout.trim();
}

export async function moduleVersion(moduleDir: string, module: string): Promise<string> {
  return go(moduleDir, ['list', '-m', '-f', '{{.Version}}', module]);
}

/** The binary, built from the Go module proxy unless this version is in the cache already. */
export async function ensureBinary(bin: GoBinary, log: (msg: string) => void = () => {}): Promise<{ path: string; version: string }> {
  const moduleDir = toolsDir(bin.dir);
  const version = await moduleVersion(moduleDir, bin.module);
  const target = path.join(cacheBin, `${bin.name}-${version}`);
  if (existsSync(target)) return { path: target, version };
  mkdirSync(cacheBin, { recursive: true });
  const partial = `${target}.partial-${process.pid}`;
  log(`building ${bin.name} ${version} from the Go module proxy (once per version; a few minutes)`);
  const started = Date.now();
  try {
    const ldflags = ['-s', '-w', ...(bin.stamp?.(version) ?? [])].join(' ');
    await go(moduleDir, ['build', '-trimpath', `-ldflags=${ldflags}`, '-o', partial, bin.pkg]);
    // Rename is atomic: an interrupted build never leaves a half-written binary under the real name.
    renameSync(partial, target);
  } finally {
    rmSync(partial, { force: true });
  }
  log(`built ${bin.name} ${version} in ${((Date.now() - started) / 1000).toFixed(0)}s`);
  return { path: target, version };
}

export interface ControlPlaneBinaries {
  kubeApiserver: string;
  etcd: string;
  versions: Record<string, string>;
}

export async function ensureControlPlaneBinaries(log: (msg: string) => void = () => {}): Promise<ControlPlaneBinaries> {
  // Sequential: two parallel Go builds on a 2-core machine are slower than one after the other.
  const versions: Record<string, string> = {};
  const paths: string[] = [];
  for (const bin of controlPlaneBinaries) {
    const built = await ensureBinary(bin, log);
    versions[bin.name] = built.version;
    paths.push(built.path);
  }
  return { kubeApiserver: paths[0]!, etcd: paths[1]!, versions };
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
