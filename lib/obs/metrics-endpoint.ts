/** The HTTP listener of `pmu serve --metrics HOST:PORT`: GET /metrics in Prometheus text format. */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PmuMetrics } from './metrics';

export const DEFAULT_METRICS_PORT = 9464;

/** "127.0.0.1:9464", "[::1]:9464", "9464" (loopback) -> host and port; undefined if it is none of these. */
export function parseHostPort(text: string): { host: string; port: number } | undefined {
  const match = /^(?:(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]+)):)?(\d+)$/.exec(text.trim());
  const port = match ? Number(match[3]) : NaN;
  if (!match || !(port >= 0 && port <= 65535)) return undefined;
  return { host: match[1] ?? match[2] ?? '127.0.0.1', port };
}

export interface MetricsEndpoint {
  url: string;
  close(): Promise<void>;
}

/** Listens on `address`; a failed listen rejects with Node's error (its `code`: EADDRINUSE, EACCES, ...). */
export async function serveMetrics(metrics: PmuMetrics, address: { host: string; port: number }): Promise<MetricsEndpoint> {
  const server = http.createServer((request, response) => {
    if (request.method !== 'GET' || (request.url ?? '').split('?')[0] !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('pmu: only GET /metrics here\n');
      return;
    }
    metrics.registry.metrics().then(
      (text) => response.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
      (error: Error) => response.writeHead(500, { 'content-type': 'text/plain' }).end(`pmu: metrics failed: ${error.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host, () => resolve());
  });
  const bound = server.address() as AddressInfo;
  const host = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  return {
    url: `http://${host}:${bound.port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
