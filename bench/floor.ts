// The Node.js floor of the `cpu` scenario: the original's work per change, in bare Node.js. It is a
// measuring stick, not a controller: it lists and watches the labeled ConfigMaps and the HelmReleases
// of one namespace and, for a ConfigMap whose content digest differs from its annotation, patches
// each HelmRelease it names (requestedAt and forceAt) and then the ConfigMap's digest: two writes
// per trigger, as the original sends, through a work queue like the original's (5 workers). No
// debounce, valves, index, metrics, Events or logs;
// the same keep-alive connections, in-cluster credentials, metadata-only write answers and digest
// as hrto. What it costs is what Node.js charges for that traffic; hrto's excess over it is hrto's.
// With --floor-events it also creates a Triggered Event per trigger as hrto does (fire and forget):
// hrto's third write, so what remains between the two is hrto's own work.
// Started by bench/operators.ts (bundled by esbuild first), with hrto's flags: only
// --watch-namespaces and --key-domain are read. Prints `ready` once both lists are in.
import https from 'node:https';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { contentDigest } from '../src/digest.js';
import { lineSplitter } from '../src/kube/lines.js';
import { DEFAULT_KEY_DOMAIN } from '../src/keys.js';

interface Meta {
  name: string;
  uid: string;
  namespace: string;
  resourceVersion: string;
  annotations?: Record<string, string>;
}
interface Obj {
  metadata: Meta;
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}

const flag = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const ns = flag('watch-namespaces');
if (!ns) throw new Error('floor: --watch-namespaces=<one namespace> is required');
const domain = flag('key-domain') ?? DEFAULT_KEY_DOMAIN;
const withEvents = process.argv.includes('--floor-events');
const keys = { watch: `${domain}/helmrelease-trigger-operator`, names: `${domain}/helmreleases-name`, namespace: `${domain}/helmreleases-namespace`, digest: `${domain}/config-digest` };

const dir = process.env.HRTO_SERVICEACCOUNT_DIR!;
const host = process.env.KUBERNETES_SERVICE_HOST!;
const port = Number(process.env.KUBERNETES_SERVICE_PORT);
const token = readFileSync(path.join(dir, 'token'), 'utf8').trim();
const ca = readFileSync(path.join(dir, 'ca.crt'));
const writes = new https.Agent({ keepAlive: true, maxSockets: 6, ca });
const watches = new https.Agent({ keepAlive: true, ca });
/** bench/operators.ts's FLOOR_AGENT (not imported: the floor bundles nothing of the bench). */
const AGENT = 'hrto-bench-floor';
const META_ANSWER = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json';

function request(agent: https.Agent, method: string, p: string, body?: unknown, accept = 'application/json'): Promise<string> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request({ agent, host, port, method, path: p, headers: { authorization: `Bearer ${token}`, 'user-agent': AGENT, accept, ...(payload ? { 'content-type': method === 'PATCH' ? 'application/merge-patch+json' : 'application/json' } : {}) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => ((res.statusCode ?? 0) < 300 ? resolve(text) : reject(new Error(`${method} ${p}: ${res.statusCode} ${text}`))));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** Lists, hands each item to `onObject`, then watches from the list's resourceVersion (again on an end). */
async function informer(p: string, query: string, onObject: (o: Obj) => void): Promise<void> {
  const list = JSON.parse(await request(watches, 'GET', `${p}?${query}`)) as { metadata: { resourceVersion: string }; items: Obj[] };
  for (const o of list.items) onObject(o);
  let rv = list.metadata.resourceVersion;
  const watch = (): void => {
    const req = https.request({ agent: watches, host, port, path: `${p}?${query}&watch=true&allowWatchBookmarks=true&resourceVersion=${rv}`, headers: { authorization: `Bearer ${token}`, 'user-agent': AGENT } }, (res) => {
      res.setEncoding('utf8');
      res.on(
        'data',
        lineSplitter((line) => {
          const event = JSON.parse(line) as { type: string; object: Obj };
          rv = event.object.metadata.resourceVersion;
          if (event.type === 'ADDED' || event.type === 'MODIFIED') onObject(event.object);
        }),
      );
      res.on('end', watch);
    });
    req.on('error', () => setTimeout(watch, 1000));
    req.end();
  };
  watch();
}

const releases = new Map<string, Obj>();
const latest = new Map<string, Obj>();
// The original's work queue (controller-runtime's): a key waits once however often it changes, is
// never handled twice at once, and comes back if it changed while handled; WORKERS at a time.
const WORKERS = 5;
const waiting: string[] = [];
const queued = new Set<string>();
const handling = new Set<string>();
const dirty = new Set<string>();
let idleWorkers = WORKERS;

function enqueue(name: string): void {
  if (handling.has(name)) dirty.add(name);
  else if (!queued.has(name)) {
    queued.add(name);
    waiting.push(name);
  }
  if (idleWorkers > 0) {
    idleWorkers--;
    void work();
  }
}

async function work(): Promise<void> {
  for (let name = waiting.shift(); name !== undefined; name = waiting.shift()) {
    queued.delete(name);
    handling.add(name);
    await handle(latest.get(name)!).catch((err: Error) => process.stderr.write(`floor: ${name}: ${err.message}\n`));
    handling.delete(name);
    if (dirty.delete(name)) enqueue(name);
  }
  idleWorkers++;
}

let sequence = 0;
/** An Event like hrto's Triggered one, not awaited (hrto's recorder does not hold a reconcile for it). */
function triggeredEvent(namespace: string, name: string, message: string): void {
  const now = new Date();
  const event = {
    metadata: { name: `${name}.${(Date.now() * 1000 + (sequence++ % 1000)).toString(16)}`, namespace },
    involvedObject: { apiVersion: 'helm.toolkit.fluxcd.io/v2', kind: 'HelmRelease', namespace, name, uid: releases.get(name)?.metadata.uid },
    type: 'Normal',
    reason: 'Triggered',
    message,
    count: 1,
    firstTimestamp: now,
    lastTimestamp: now,
    source: { component: AGENT },
  };
  request(writes, 'POST', `/api/v1/namespaces/${namespace}/events`, event, META_ANSWER).catch((err: Error) => process.stderr.write(`floor: Event: ${err.message}\n`));
}

/** The original's reconcile: a content not yet recorded triggers its releases, then is recorded. */
async function handle(cm: Obj): Promise<void> {
  const digest = contentDigest({ data: cm.data, binaryData: cm.binaryData });
  const annotations = cm.metadata.annotations ?? {};
  if (annotations[keys.digest] === digest) return;
  const at = new Date().toISOString();
  const target = annotations[keys.namespace] ?? 'flux-system';
  for (const release of (annotations[keys.names] ?? '').split(',').filter(Boolean)) {
    await request(writes, 'PATCH', `/apis/helm.toolkit.fluxcd.io/v2/namespaces/${target}/helmreleases/${release}`, { metadata: { annotations: { 'reconcile.fluxcd.io/requestedAt': at, 'reconcile.fluxcd.io/forceAt': at } } }, META_ANSWER);
    if (withEvents) triggeredEvent(target, release, `ConfigMap ${cm.metadata.namespace}/${cm.metadata.name} changed (${digest.slice(7, 19)}): requested forced upgrade at ${at}`);
  }
  await request(writes, 'PATCH', `/api/v1/namespaces/${cm.metadata.namespace}/configmaps/${cm.metadata.name}`, { metadata: { annotations: { [keys.digest]: digest } } }, META_ANSWER);
}

await Promise.all([
  informer(`/apis/helm.toolkit.fluxcd.io/v2/namespaces/${ns}/helmreleases`, '', (o) => releases.set(o.metadata.name, o)),
  informer(`/api/v1/namespaces/${ns}/configmaps`, `labelSelector=${encodeURIComponent(`${keys.watch}=true`)}`, (o) => {
    latest.set(o.metadata.name, o);
    enqueue(o.metadata.name);
  }),
]);
process.stdout.write('ready\n');
process.on('SIGTERM', () => process.exit(0));
