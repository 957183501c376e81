// `--metrics=HOST:PORT`: a small HTTP server with the process's Status as Prometheus text at /metrics
// and as JSON at /status. Read-only, GET only, no other paths; bind it to loopback or a private address.
import * as http from 'http';
import { AddressInfo } from 'net';
import { prometheusText, Status } from './status';

export interface MetricsServer {
  /** Where it listens, as host:port (the port the kernel chose, for port 0). */
  readonly address: string;
  close(): Promise<void>;
}

function hostPort(a: AddressInfo): string {
  return a.family === 'IPv6' || a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

/** `status` may be asynchronous: with --workers the main thread asks every worker for its part. */
export function startMetricsServer(host: string, port: number, status: () => Status | Promise<Status>): Promise<MetricsServer> {
  const server = http.createServer(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('only GET\n');
      return;
    }
    let body: string;
    let type: string;
    try {
      if (path === '/metrics') {
        body = prometheusText(await status());
        type = 'text/plain; version=0.0.4; charset=utf-8';
      } else if (path === '/status') {
        body = `${JSON.stringify(await status())}\n`;
        type = 'application/json';
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics or /status\n');
        return;
      }
    } catch (e) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`${(e as Error).message}\n`);
      return;
    }
    res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  // A scraper that stalls must not hold sockets for long.
  server.headersTimeout = 5000;
  server.requestTimeout = 5000;
  server.keepAliveTimeout = 5000;
  return new Promise((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(new Error(`--metrics: cannot listen on ${host}:${port}: ${e.code ?? e.message}`)));
    server.listen(port, host, () => {
      server.unref();
      resolve({
        address: hostPort(server.address() as AddressInfo),
        close: () => new Promise<void>((r) => {
          server.close(() => r());
          server.closeAllConnections();
        }),
      });
    });
  });
}
