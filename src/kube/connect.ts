// Connects to the API server the way a pod or a workstation expects (see credentials.ts).
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { KubeApi, type KubeApiOptions } from './api.js';
import { type CredentialSource, type Credentials, CredentialsError, inClusterCredentials, runsInCluster } from './credentials.js';
import type { WorkerReply } from './kubeconfig-worker.js';

/** The kubeconfig reader: beside the bundle in a build; from the source tree through tsx otherwise. */
function startWorker(file: string | undefined, context: string | undefined): Worker {
  const workerData = { file, context };
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./kubeconfig-worker.mjs', import.meta.url), { workerData });
  // Workers do not inherit tsx's loader: register it there first.
  const tsx = JSON.stringify(import.meta.resolve('tsx/esm/api'));
  const entry = JSON.stringify(new URL('./kubeconfig-worker.ts', import.meta.url).href);
  return new Worker(`import(${tsx}).then(({ register }) => { register(); return import(${entry}); })`, { eval: true, workerData });
}

/** A kubeconfig (the file, or KUBECONFIG and ~/.kube/config when undefined), read in a worker thread. */
export async function kubeconfigCredentials(file: string | undefined, context?: string): Promise<CredentialSource> {
  const worker = startWorker(file, context);
  const waiting = new Map<number, { resolve: (reply: WorkerReply) => void; reject: (err: Error) => void }>();
  let next = 0;
  const failAll = (err: Error): void => {
    for (const { reject } of waiting.values()) reject(err);
    waiting.clear();
  };
  worker.on('message', (reply: WorkerReply) => {
    waiting.get(reply.id)?.resolve(reply);
    waiting.delete(reply.id);
  });
  worker.on('error', failAll);
  worker.on('exit', () => failAll(new CredentialsError('the kubeconfig reader stopped')));
  const ask = async (): Promise<{ credentials: Credentials; rotating: boolean }> => {
    const id = next++;
    const reply = await new Promise<WorkerReply>((resolve, reject) => {
      waiting.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage({ id });
    }).finally(() => worker.unref());
    if (!reply.credentials) throw new CredentialsError(reply.error ?? 'no credentials');
    return { credentials: reply.credentials, rotating: reply.rotating === true };
  };
  let first: Awaited<ReturnType<typeof ask>>;
  try {
    first = await ask();
  } catch (err) {
    await worker.terminate();
    throw err;
  }
  let current = first.credentials;
  if (!first.rotating) await worker.terminate();
  return {
    rotating: first.rotating,
    get: async (fresh) => {
      if (fresh && first.rotating) current = (await ask()).credentials;
      return current;
    },
    close: () => void worker.terminate(),
  };
}

/**
 * Why no kubeconfig can be read, and where it was looked for; undefined: there is one to read (or
 * hrto runs in a pod). Without it client-node would fall back to http://localhost:8080 and fail
 * with a message about TLS.
 */
export function missingKubeconfig(kubeconfig: string | undefined, env: NodeJS.ProcessEnv = process.env, exists: (file: string) => boolean = existsSync): string | undefined {
  if (kubeconfig) return exists(kubeconfig) ? undefined : `--kubeconfig ${kubeconfig}: no such file`;
  const listed = (env.KUBECONFIG ?? '').split(path.delimiter).filter((f) => f !== '');
  if (listed.length > 0) return listed.some(exists) ? undefined : `KUBECONFIG names no file that exists (${listed.join(', ')})`;
  const home = path.join(env.HOME ?? env.USERPROFILE ?? os.homedir(), '.kube', 'config');
  if (exists(home)) return undefined;
  return `no kubeconfig found: no --kubeconfig, KUBECONFIG is not set, there is no ${home}, and this is not a pod with a service account; pass --kubeconfig or set KUBECONFIG`;
}

/** --kubeconfig, KUBECONFIG, the pod's service account, ~/.kube/config: the first that applies. */
export async function connect(kubeconfig: string | undefined, options: KubeApiOptions = {}, env: NodeJS.ProcessEnv = process.env, context?: string): Promise<KubeApi> {
  if (runsInCluster(kubeconfig, env) && context === undefined) return KubeApi.create(inClusterCredentials(env), options);
  const missing = missingKubeconfig(kubeconfig, env);
  if (missing) throw new CredentialsError(missing);
  return KubeApi.create(await kubeconfigCredentials(kubeconfig, context), options);
}
