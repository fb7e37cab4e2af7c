// A real local control plane (etcd + kube-apiserver) configured like controller-runtime's envtest:
// secure serving on loopback, RBAC authorization, an admin identity in system:masters and a
// generated kubeconfig. It ends exactly the processes it started and removes its directory.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import https from 'node:https';
import { ensureControlPlaneBinaries, type ControlPlaneBinaries } from './binaries.js';
import { freePort, ProcessGroup } from './processes.js';

export interface ControlPlaneOptions {
  log?: (msg: string) => void;
  /** Extra kube-apiserver flags (`--name=value`). */
  apiserverFlags?: string[];
  startTimeoutMs?: number;
}

export { freePort };

export class ControlPlane {
  private readonly group = new ProcessGroup('hrto-controlplane');
  readonly dir = this.group.dir;
  readonly token = randomBytes(24).toString('hex');
  readonly kubeconfigPath: string;
  readonly auditLogPath: string;
  apiserverUrl = '';
  binaries?: ControlPlaneBinaries;
  private readonly log: (msg: string) => void;
  private readonly options: ControlPlaneOptions;

  constructor(options: ControlPlaneOptions = {}) {
    this.options = options;
    this.log = options.log ?? (() => {});
    this.kubeconfigPath = path.join(this.dir, 'kubeconfig');
    this.auditLogPath = path.join(this.dir, 'audit.log');
  }

  get pids(): number[] {
    return this.group.pids;
  }

  async start(): Promise<void> {
    try {
      this.binaries = await ensureControlPlaneBinaries(this.log);
      const etcdClient = await this.startEtcd(this.binaries.etcd);
      await this.startApiserver(this.binaries.kubeApiserver, etcdClient);
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  private async startEtcd(binary: string): Promise<string> {
    const [clientPort, peerPort] = [await freePort(), await freePort()];
    const client = `http://127.0.0.1:${clientPort}`;
    const peer = `http://127.0.0.1:${peerPort}`;
    this.group.spawn('etcd', binary, [
      '--name=hrto-test',
      `--data-dir=${path.join(this.dir, 'etcd')}`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=hrto-test=${peer}`,
      '--unsafe-no-fsync=true',
      '--log-level=warn',
    ]);
    await this.waitFor('etcd', async () => {
      const res = await fetch(`${client}/health`).catch(() => undefined);
      return res?.ok === true;
    });
    return client;
  }

  private async startApiserver(binary: string, etcdServers: string): Promise<void> {
    const port = await freePort();
    const certDir = path.join(this.dir, 'certs');
    const { publicKey, privateKey } = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    writeFileSync(path.join(this.dir, 'sa.pub'), publicKey);
    writeFileSync(path.join(this.dir, 'sa.key'), privateKey, { mode: 0o600 });
    writeFileSync(path.join(this.dir, 'tokens.csv'), `${this.token},admin,admin,"system:masters"\n`, { mode: 0o600 });
    writeFileSync(
      path.join(this.dir, 'audit-policy.yaml'),
      [
        'apiVersion: audit.k8s.io/v1',
        'kind: Policy',
        'omitStages: ["RequestReceived", "ResponseStarted"]',
        'rules:',
        // A HelmRelease patch with its body: a trigger (requestedAt) is told apart from a hold (spec.suspend).
        '- level: Request',
        '  verbs: ["patch"]',
        '  resources:',
        '  - group: "helm.toolkit.fluxcd.io"',
        '    resources: ["helmreleases"]',
        '- level: Metadata',
        '  verbs: ["create", "update", "patch", "delete"]',
        '  resources:',
        '  - group: "helm.toolkit.fluxcd.io"',
        '  - group: ""',
        '    resources: ["configmaps", "secrets", "events"]',
        '  - group: "coordination.k8s.io"',
        // Lists and watches (few: one per informer start) too, not gets (every poll of a test).
        '- level: Metadata',
        '  verbs: ["list", "watch"]',
        '  resources:',
        '  - group: "helm.toolkit.fluxcd.io"',
        '  - group: ""',
        '    resources: ["configmaps", "secrets"]',
        '- level: None',
        '',
      ].join('\n'),
    );
    this.group.spawn('kube-apiserver', binary, [
      `--etcd-servers=${etcdServers}`,
      `--cert-dir=${certDir}`,
      `--secure-port=${port}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      // As envtest: a loopback advertise address needs no kubernetes Service endpoints.
      '--endpoint-reconciler-type=none',
      '--service-cluster-ip-range=10.0.0.0/24',
      '--authorization-mode=RBAC',
      `--token-auth-file=${path.join(this.dir, 'tokens.csv')}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${path.join(this.dir, 'sa.pub')}`,
      `--service-account-signing-key-file=${path.join(this.dir, 'sa.key')}`,
      '--allow-privileged=true',
      `--audit-policy-file=${path.join(this.dir, 'audit-policy.yaml')}`,
      `--audit-log-path=${this.auditLogPath}`,
      '--audit-log-format=json',
      ...(this.options.apiserverFlags ?? []),
    ]);
    this.apiserverUrl = `https://127.0.0.1:${port}`;
    await this.waitFor('kube-apiserver', async () => (await this.get('/readyz')).status === 200);
    // The serving certificate kube-apiserver generated for itself carries its own CA.
    const ca = path.join(certDir, 'apiserver.crt');
    writeFileSync(
      this.kubeconfigPath,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        '- name: hrto-test',
        '  cluster:',
        `    server: ${this.apiserverUrl}`,
        `    certificate-authority: ${ca}`,
        'users:',
        '- name: admin',
        '  user:',
        `    token: ${this.token}`,
        'contexts:',
        '- name: hrto-test',
        '  context: {cluster: hrto-test, user: admin}',
        'current-context: hrto-test',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
  }

  /**
   * A kubeconfig with everything inline (the CA's data and a token), as Flux's controllers accept
   * one from a Secret (they refuse file references): how a hub reaches this control plane as a spoke.
   */
  inlineKubeconfig(token = this.token): string {
    const ca = readFileSync(path.join(this.dir, 'certs', 'apiserver.crt')).toString('base64');
    return [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: spoke',
      '  cluster:',
      `    server: ${this.apiserverUrl}`,
      `    certificate-authority-data: ${ca}`,
      'users:',
      '- name: admin',
      '  user:',
      `    token: ${token}`,
      'contexts:',
      '- name: spoke',
      '  context: {cluster: spoke, user: admin}',
      'current-context: spoke',
      '',
    ].join('\n');
  }

  /** A raw authenticated GET, for probes before any client is configured. */
  get(pathname: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve) => {
      const req = https.get(
        `${this.apiserverUrl}${pathname}`,
        { headers: { authorization: `Bearer ${this.token}` }, rejectUnauthorized: false, timeout: 5000 },
        (res) => {
          let body = '';
          res.on('data', (chunk: Buffer) => (body += chunk.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', () => resolve({ status: 0, body: '' }));
      req.on('timeout', () => req.destroy());
    });
  }

  private waitFor(name: string, ready: () => Promise<boolean>): Promise<void> {
    return this.group.waitFor(name, ready, this.options.startTimeoutMs);
  }

  /** Kills kube-apiserver, keeps it down for `downMs`, starts it again on the same port and data. */
  async restartApiserver(downMs: number): Promise<void> {
    await this.group.restart('kube-apiserver', downMs);
    await this.waitFor('kube-apiserver', async () => (await this.get('/readyz')).status === 200);
  }

  /** Stops etcd and kube-apiserver, then removes the directory. */
  stop(): Promise<void> {
    return this.group.stop();
  }

  /** Synchronous last resort for process exit and signals. */
  killNow(): void {
    this.group.killNow();
  }
}
