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

type Routes = Record<string, () => Reply | Promise<Reply>>;

export async function serve(address: string, routes: Routes): Promise<Server | undefined> {
  const bind = parseBindAddress(address);
  if (!bind) return undefined;
  const server = createServer((req, res) => {
    const route = req.method === 'GET' ? routes[req.url?.split('?')[0] ?? ''] : undefined;
    if (!route) {
      res.writeHead(404).end('not found\n');
      return;
    }
    Promise.resolve()
      .then(route)
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

/** Live while the process serves; ready once the caches are synced (a standby is ready too). */
export function serveProbes(address: string, ready: () => boolean): Promise<Server | undefined> {
  return serve(address, {
    '/healthz': () => ({ status: 200, body: 'ok\n' }),
    '/readyz': () => (ready() ? { status: 200, body: 'ok\n' } : { status: 503, body: 'caches not synced\n' }),
  });
}
