// Where hrto's API server address and credentials come from, in controller-runtime's order:
// --kubeconfig, then KUBECONFIG, then the pod's service account (in-cluster), then ~/.kube/config.
// The in-cluster path (what every pod takes) is a few file reads; a kubeconfig is read by
// client-node's KubeConfig in a worker thread, so its code never lives in the controller's heap.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * Where the pod's service account is mounted. HRTO_SERVICEACCOUNT_DIR moves it so tests and benchmarks
 * can run the in-cluster path outside a pod; a pod never sets it, and then it is the kubelet's path.
 */
export function serviceAccountDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.HRTO_SERVICEACCOUNT_DIR || SERVICE_ACCOUNT_DIR;
}

/** How long credentials that can change (a rotated token file, an exec plugin's token) are reused. */
export const ROTATING_CREDENTIALS_TTL_MS = 60_000;

/** TLS settings of the connection: they make the agent, so they change rarely. */
export interface TlsMaterial {
  ca?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  rejectUnauthorized?: boolean | undefined;
  servername?: string | undefined;
}

export interface Credentials {
  /** Base URL of the API server, without a trailing slash. */
  server: string;
  tls: TlsMaterial;
  /** Authorization and impersonation headers. */
  headers: Record<string, string>;
}

export interface CredentialSource {
  /** The credentials; `fresh` re-reads them (after a 401, or when rotating ones are due). */
  get(fresh: boolean): Promise<Credentials>;
  /** True when they can change while hrto runs: token files and exec plugins. */
  readonly rotating: boolean;
  close(): void;
}

export class CredentialsError extends Error {
  override readonly name = 'CredentialsError';
}

/** `KUBERNETES_SERVICE_HOST` and its port, IPv6 addresses in brackets, as client-go builds it. */
export function inClusterServer(env: NodeJS.ProcessEnv): string | undefined {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) return undefined;
  return `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/**
 * The pod's service account: token and CA files in `dir`. The token is a bound token that the
 * kubelet rotates, so it is read again every minute and at once after a 401, as client-go does.
 */
export function inClusterCredentials(env: NodeJS.ProcessEnv = process.env, dir = serviceAccountDir(env)): CredentialSource {
  const server = inClusterServer(env);
  if (!server) throw new CredentialsError('not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set');
  const read = (file: string): string => {
    try {
      return readFileSync(path.join(dir, file), 'utf8');
    } catch (err) {
      throw new CredentialsError(`in-cluster configuration: cannot read ${path.join(dir, file)}: ${(err as Error).message}`);
    }
  };
  const tls: TlsMaterial = { ca: read('ca.crt') };
  const load = (): Credentials => ({ server, tls, headers: { authorization: `Bearer ${read('token').trim()}` } });
  // Read up front: a pod without its token fails at start, not at the first request.
  let current = load();
  return {
    rotating: true,
    get: (fresh) => {
      if (fresh) current = load();
      return Promise.resolve(current);
    },
    close: () => {},
  };
}

/** In a pod with its service account mounted, and not pointed at a kubeconfig. */
export function runsInCluster(kubeconfig: string | undefined, env: NodeJS.ProcessEnv = process.env, dir = serviceAccountDir(env)): boolean {
  return !kubeconfig && !env.KUBECONFIG && inClusterServer(env) !== undefined && existsSync(path.join(dir, 'token'));
}

/** A user whose token can change: exec plugins, auth providers, token files. */
export function rotatingUser(kc: KubeConfig): boolean {
  const user = kc.getCurrentUser() as { exec?: unknown; authProvider?: unknown; tokenFile?: unknown } | null;
  return Boolean(user?.exec || user?.authProvider || user?.tokenFile);
}

/** client-node gives file contents as Buffers and inline data as strings. */
const text = (v: Buffer | string | undefined): string | undefined => (Buffer.isBuffer(v) ? v.toString('utf8') : v);

/** What client-node would send for this KubeConfig: its TLS options and authentication headers. */
export async function credentialsOf(kc: KubeConfig): Promise<Credentials> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new CredentialsError('kubeconfig has no current cluster');
  const opts: { ca?: Buffer | string; cert?: Buffer | string; key?: Buffer | string; rejectUnauthorized?: boolean; servername?: string; headers?: Record<string, string>; auth?: string } = {};
  await kc.applyToHTTPSOptions(opts as Parameters<KubeConfig['applyToHTTPSOptions']>[0]);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(opts.headers ?? {})) headers[k.toLowerCase()] = v;
  if (opts.auth) headers.authorization = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
  return {
    server: cluster.server.replace(/\/$/, ''),
    tls: { ca: text(opts.ca), cert: text(opts.cert), key: text(opts.key), rejectUnauthorized: opts.rejectUnauthorized, servername: opts.servername },
    headers,
  };
}

/** Credentials from a KubeConfig already loaded in this process (tests, the demo). */
export function kubeConfigCredentials(kc: KubeConfig): CredentialSource {
  let current: Promise<Credentials> | undefined;
  return {
    rotating: rotatingUser(kc),
    get: (fresh) => {
      if (fresh || !current) {
        current = credentialsOf(kc);
        current.catch(() => (current = undefined));
      }
      return current;
    },
    close: () => {},
  };
}
