// The two small HTTP endpoints a controller serves, each on its own port like controller-runtime:
// Prometheus /metrics, and the /healthz and /readyz probes.
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

/** Parses ":8080" or "127.0.0.1:8080"; "0" disables. */
export function parseBindAddress(address: string): { host: string | undefined; port: number } | undefined {
  if (address === '0' || address === '') return undefined;
  const at = address.lastIndexOf(':');
  const port = Number(address.slice(at + 1));
  if (at < 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`invalid bind address "${address}" (expected [host]:port, or 0 to disable)`);
  }
  const host = address.slice(0, at).replace(/^\[|\]$/g, '');
  return { host: host || undefined, port };
}

interface Reply {
  status: number;
  body: string;
  contentType?: string;
}

/** A route answers from the request's query string (`?verbose`: has('verbose')). */
type Routes = Record<string, (query: URLSearchParams) => Reply | Promise<Reply>>;

export async function serve(address: string, routes: Routes): Promise<Server | undefined> {
  const bind = parseBindAddress(address);
  if (!bind) return undefined;
  const server = createServer((req, res) => {
    // Only the path and query are read; the base is a placeholder for the parser.
    const url = new URL(req.url ?? '/', 'http://probe');
    const route = req.method === 'GET' ? routes[url.pathname] : undefined;
    if (!route) {
      res.writeHead(404).end('not found\n');
      return;
    }
    Promise.resolve()
      .then(() => route(url.searchParams))
      .then(({ status, body, contentType }) => res.writeHead(status, { 'content-type': contentType ?? 'text/plain; charset=utf-8' }).end(body))
      .catch((err: unknown) => res.writeHead(500).end(`${(err as Error).message}\n`));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(bind.port, bind.host, resolve);
  });
  return server;
}

export function serveMetrics(registry: Registry, address: string): Promise<Server | undefined> {
  return serve(address, {
    '/metrics': async () => ({ status: 200, body: await registry.metrics(), contentType: registry.contentType }),
  });
}

/** One readiness check, as the API server reports it: `[+]name ok` or `[-]name failed: detail`. */
export interface Check {
  name: string;
  ok: boolean;
  /** Instead of "ok" when passing ("disabled: ..."); the reason when failing. */
  detail?: string;
}

/**
 * The API server's /readyz manners: "ok" when every check passes, one line per check with
 * `?verbose` or when one fails (so the failing body says which), then the verdict.
 */
export function probeReply(checks: readonly Check[], verbose: boolean): Reply {
  const ok = checks.every((c) => c.ok);
  if (ok && !verbose) return { status: 200, body: 'ok\n' };
  const lines = checks.map((c) => (c.ok ? `[+]${c.name} ${c.detail ?? 'ok'}` : `[-]${c.name} failed: ${c.detail ?? 'reason unknown'}`));
  return { status: ok ? 200 : 503, body: `${lines.join('\n')}\nreadyz check ${ok ? 'passed' : 'failed'}\n` };
}

/**
 * hrto's readiness: the caches synced (a standby is ready too). An optional feature turned off by
 * the access check is shown, passing: hrto serves without it, so it must not take the pod out.
 */
export function readinessChecks(synced: boolean, disabled: readonly { feature: string; reasons: readonly string[] }[]): Check[] {
  return [
    synced ? { name: 'informers-synced', ok: true } : { name: 'informers-synced', ok: false, detail: 'caches not synced' },
    ...disabled.map(({ feature, reasons }) => ({ name: feature, ok: true, detail: `disabled: ${reasons.join('; ')}` })),
  ];
}

/** /healthz: live while the process serves. /readyz: the checks, detailed with ?verbose. */
export function serveProbes(address: string, checks: () => readonly Check[]): Promise<Server | undefined> {
  return serve(address, {
    '/healthz': () => ({ status: 200, body: 'ok\n' }),
    '/readyz': (query) => probeReply(checks(), query.has('verbose')),
  });
}
