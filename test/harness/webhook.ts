// A webhook on loopback that records the JSON bodies posted to it: where notification-controller's
// generic provider, or hrto's own Flux event poster, delivers in the tests.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Webhook<T> {
  url: string;
  bodies: T[];
  close(): Promise<void>;
}

/** Answers each post with the next of `statuses` (the last one repeats). */
export async function webhook<T>(statuses: readonly number[] = [200]): Promise<Webhook<T>> {
  const bodies: T[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      bodies.push(JSON.parse(body) as T);
      res.writeHead(statuses[Math.min(bodies.length - 1, statuses.length - 1)]!).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    bodies,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
