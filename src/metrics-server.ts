// Serves /metrics for Prometheus.
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

export async function serveMetrics(registry: Registry, address: string): Promise<Server | undefined> {
  const bind = parseBindAddress(address);
  if (!bind) return undefined;
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404).end('not found\n');
      return;
    }
    registry
      .metrics()
      .then((body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body))
      .catch((err: unknown) => res.writeHead(500).end(`${(err as Error).message}\n`));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(bind.port, bind.host, resolve);
  });
  return server;
}
