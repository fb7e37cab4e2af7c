// Flux's own source-controller and helm-controller, built from the Go module proxy at the pinned
// versions and run against a cluster, with a small Helm chart served from a repository on loopback.
// Used by the end-to-end tests and the demo: hrto is proven against the real helm-controller.
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { deployBinaries, ensureBinary, fluxBinaries, moduleSource } from './binaries.js';
import { installCrds } from './cluster.js';
import { freePort, ProcessGroup } from './processes.js';

const run = promisify(execFile);

export const DEMO_CHART = 'hrto-demo';
export const DEMO_CHART_VERSION = '0.1.0';

/** A chart whose only object is a ConfigMap showing `.Values.message`: installable without nodes. */
function writeChart(dir: string): string {
  const chart = path.join(dir, DEMO_CHART);
  mkdirSync(path.join(chart, 'templates'), { recursive: true });
  writeFileSync(path.join(chart, 'Chart.yaml'), `apiVersion: v2\nname: ${DEMO_CHART}\nversion: ${DEMO_CHART_VERSION}\n`);
  writeFileSync(path.join(chart, 'values.yaml'), 'message: default\nreplicas: 1\n');
  writeFileSync(
    path.join(chart, 'templates', 'rendered.yaml'),
    [
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata:',
      '  name: {{ .Release.Name }}-rendered',
      'data:',
      '  message: {{ .Values.message | quote }}',
      '  replicas: {{ .Values.replicas | quote }}',
      '',
    ].join('\n'),
  );
  return chart;
}

export interface FluxVersions {
  sourceController: string;
  helmController: string;
}

export class FluxControllers {
  private readonly group = new ProcessGroup('hrto-flux');
  private repoServer?: Server;
  /** The Helm repository URL to point a HelmRepository at. */
  repositoryUrl = '';

  constructor(
    private readonly kubeconfigPath: string,
    private readonly kc: KubeConfig,
    private readonly log: (msg: string) => void = () => {},
  ) {}

  async start(): Promise<FluxVersions> {
    try {
      const [source, helmController, helm] = await Promise.all([
        ensureBinary(fluxBinaries.sourceController, this.log),
        ensureBinary(fluxBinaries.helmController, this.log),
        ensureBinary(deployBinaries.helm, this.log),
      ]);
      const sourceModule = await moduleSource(fluxBinaries.sourceController.dir, fluxBinaries.sourceController.module);
      const crdDir = path.join(sourceModule.dir, 'config', 'crd', 'bases');
      await installCrds(this.kc, readdirSync(crdDir).map((f) => path.join(crdDir, f)));
      await this.ensureNamespace('flux-system');
      await this.serveRepository(helm.path);
      mkdirSync(path.join(this.group.dir, 'storage'));

      const env = { ...process.env, KUBECONFIG: this.kubeconfigPath, RUNTIME_NAMESPACE: 'flux-system' };
      const common = ['--watch-all-namespaces=true', '--enable-leader-election=false', '--log-encoding=json', '--log-level=info'];
      const storagePort = await freePort();
      const sourceHealth = await freePort();
      this.group.spawn('source-controller', source.path, [
        ...common,
        `--storage-path=${path.join(this.group.dir, 'storage')}`,
        `--storage-addr=127.0.0.1:${storagePort}`,
        `--storage-adv-addr=127.0.0.1:${storagePort}`,
        `--metrics-addr=127.0.0.1:${await freePort()}`,
        `--health-addr=127.0.0.1:${sourceHealth}`,
      ], env);
      const helmHealth = await freePort();
      this.group.spawn('helm-controller', helmController.path, [
        ...common,
        `--metrics-addr=127.0.0.1:${await freePort()}`,
        `--health-addr=127.0.0.1:${helmHealth}`,
      ], env);
      for (const [name, port] of [['source-controller', sourceHealth], ['helm-controller', helmHealth]] as const) {
        await this.group.waitFor(name, async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).ok);
      }
      return { sourceController: source.version, helmController: helmController.version };
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  private async ensureNamespace(name: string): Promise<void> {
    const core = this.kc.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name } } }).catch((err: unknown) => {
      if ((err as { code?: number }).code !== 409) throw err;
    });
  }

  /** Packages the demo chart with helm and serves it with an index, as any Helm repository does. */
  private async serveRepository(helm: string): Promise<void> {
    const repo = path.join(this.group.dir, 'repo');
    mkdirSync(repo, { recursive: true });
    const home = path.join(this.group.dir, 'helm-home');
    const env = { ...process.env, HELM_CACHE_HOME: home, HELM_CONFIG_HOME: home, HELM_DATA_HOME: home };
    await run(helm, ['package', writeChart(this.group.dir), '--destination', repo], { env });
    const server = createServer((req, res) => {
      const file = path.join(repo, path.basename(req.url?.split('?')[0] ?? ''));
      try {
        res.writeHead(200).end(readFileSync(file));
      } catch {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.repoServer = server;
    const address = server.address();
    this.repositoryUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    await run(helm, ['repo', 'index', repo, '--url', this.repositoryUrl], { env });
  }

  logOf(name: 'source-controller' | 'helm-controller'): string {
    return this.group.logOf(name);
  }

  async stop(): Promise<void> {
    this.repoServer?.close();
    await this.group.stop();
  }
}
