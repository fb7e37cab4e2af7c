// A fault-injecting HTTP proxy in front of the real kube-apiserver: hrto talks plain HTTP to it on
// loopback, it forwards to the API server with the admin identity, and on request it answers
// chosen requests with an error status (with Retry-After), delays them, ends watches with 410 Gone
// as the API server does when a resourceVersion is compacted, or drops every open connection.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

export interface Fault {
  /** Which requests: method and a path pattern (query excluded); `watch` for watch requests only. */
  method?: string;
  path?: RegExp;
  watch?: boolean;
  /** How many matching requests it hits; then it is spent. */
  times: number;
  /** Answer with this status (a Kubernetes Status body). */
  status?: number;
  retryAfterSeconds?: number;
  /** Forward, but only after this delay. */
  delayMs?: number;
  /** For a watch: answer 200 with a single ERROR event carrying 410 Gone, then end. */
  expire?: boolean;
}

export class FaultProxy {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  private readonly faults: Fault[] = [];
  /** Requests answered by a fault, by kind, for assertions. */
  readonly injected: string[] = [];
  url = '';

  constructor(
    private readonly target: string,
    private readonly token: string,
  ) {}

  async start(): Promise<void> {
    const server = createServer((req, res) => void this.handle(req, res));
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    this.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    this.server = server;
  }

  /** A kubeconfig for hrto: plain HTTP to the proxy (allowed by client-node only with skip-TLS-verify). */
  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'proxy', server: this.url, skipTLSVerify: true }],
      users: [{ name: 'proxy' }],
      contexts: [{ name: 'proxy', cluster: 'proxy', user: 'proxy' }],
      currentContext: 'proxy',
    });
    return kc;
  }

  inject(fault: Fault): void {
    this.faults.push({ ...fault });
  }

  /** Cuts every open connection, watches included, as a network failure would. */
  dropConnections(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  private take(req: IncomingMessage): Fault | undefined {
    const url = new URL(req.url ?? '/', 'http://x');
    const isWatch = url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1';
    const index = this.faults.findIndex(
      (f) => f.times > 0 && (!f.method || f.method === req.method) && (!f.path || f.path.test(url.pathname)) && (f.watch === undefined || f.watch === isWatch),
    );
    if (index < 0) return undefined;
    const fault = this.faults[index]!;
    fault.times--;
    this.injected.push(`${req.method} ${url.pathname} ${fault.status ?? (fault.expire ? 'expire' : `delay ${fault.delayMs}ms`)}`);
    return fault;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const fault = this.take(req);
    if (fault?.expire) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(`${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Expired', code: 410, message: 'too old resource version' } })}\n`);
      req.resume();
      return;
    }
    if (fault?.status) {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (fault.retryAfterSeconds !== undefined) headers['retry-after'] = String(fault.retryAfterSeconds);
      res.writeHead(fault.status, headers);
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Injected', code: fault.status, message: `injected ${fault.status}` }));
      req.resume();
      return;
    }
    if (fault?.delayMs) await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
    const upstream = https.request(
      `${this.target}${req.url ?? '/'}`,
      { method: req.method, headers: { ...req.headers, host: new URL(this.target).host, authorization: `Bearer ${this.token}` }, rejectUnauthorized: false },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  }

  async stop(): Promise<void> {
    this.dropConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
