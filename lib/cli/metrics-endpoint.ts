/** The HTTP listener of `pmu serve --metrics HOST:PORT`: GET /metrics in Prometheus text format. */
import * as http from 'node:http';
import { PmuError } from '../unit/errors';
import { UsageError } from './args';
import { PmuMetrics } from './metrics';

export const DEFAULT_METRICS_PORT = 9464;

/** "127.0.0.1:9464", "[::1]:9464", "9464" (loopback) -> host and port. */
export function parseMetricsAddress(text: string): { host: string; port: number } {
  const match = /^(?:(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]+)):)?(\d+)$/.exec(text.trim());
  const port = match ? Number(match[3]) : NaN;
  if (!match || !(port >= 0 && port <= 65535)) throw new UsageError(`--metrics must be HOST:PORT such as 127.0.0.1:${DEFAULT_METRICS_PORT}, got ${JSON.stringify(text)}`);
  return { host: match[1] ?? match[2] ?? '127.0.0.1', port };
}

export interface MetricsEndpoint {
  url: string;
  close(): Promise<void>;
}

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
    server.once('error', (error: NodeJS.ErrnoException) => reject(new PmuError('ECONNECTION', `metrics listen on ${address.host}:${address.port} failed: ${error.code ?? ''} ${error.message}`.trim(), { cause: error })));
    server.listen(address.port, address.host, () => resolve());
  });
  const bound = server.address() as import('node:net').AddressInfo;
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
