// Runs in a worker thread: client-node's KubeConfig reads the kubeconfig (contexts, exec plugins,
// auth providers, token files) and answers each request with the credentials it would send. The
// worker ends once they are known not to change, which frees all of client-node's code and heap.
import { parentPort, workerData } from 'node:worker_threads';
import { KubeConfig } from '@kubernetes/client-node';
import { credentialsOf, rotatingUser } from './credentials.js';

export type WorkerRequest = { id: number };
export type WorkerReply = { id: number; credentials?: Awaited<ReturnType<typeof credentialsOf>>; error?: string; rotating?: boolean };

const port = parentPort!;
const { file, context } = workerData as { file: string | undefined; context: string | undefined };
let kc: KubeConfig | undefined;
let loadError: string | undefined;
try {
  kc = new KubeConfig();
  if (file) kc.loadFromFile(file);
  else kc.loadFromDefault();
  if (context !== undefined) {
    if (!kc.getContextObject(context)) throw new Error(`no context "${context}" (contexts: ${kc.getContexts().map((c) => c.name).join(', ') || 'none'})`);
    kc.setCurrentContext(context);
  }
} catch (err) {
  loadError = `kubeconfig ${file ?? '(default)'}: ${(err as Error).message}`;
}
port.on('message', ({ id }: WorkerRequest) => {
  if (!kc || loadError) {
    port.postMessage({ id, error: loadError } satisfies WorkerReply);
    return;
  }
  credentialsOf(kc).then(
    (credentials) => port.postMessage({ id, credentials, rotating: rotatingUser(kc) } satisfies WorkerReply),
    (err: unknown) => port.postMessage({ id, error: (err as Error).message } satisfies WorkerReply),
  );
});
