/**
 * The HTTP listener of `pmu serve --metrics HOST:PORT`: GET /metrics in Prometheus text format.
 * It is unauthenticated, so it must cost the server little whatever a client does: a scrape's
 * text is reused for `minIntervalMs` (a scrape loop, or many at once, make one exposition), the
 * listener holds at most `maxConnections` sockets, so a flood cannot take the descriptors PMU
 * clients need: past the cap the oldest socket that has sent no request yet is closed to make
 * room (a real scraper sends its request at once, so silent sockets cannot lock it out), or,
 * if every socket is busy, the new one; and a socket that sends no complete request within
 * `headersTimeoutMs`, or idles, is closed.
 */
import * as http from 'node:http';
import { performance } from 'node:perf_hooks';
import type { AddressInfo, Socket } from 'node:net';
import { PmuMetrics } from './metrics';

export const DEFAULT_METRICS_PORT = 9464;

/** "127.0.0.1:9464", "[::1]:9464", "9464" (loopback) -> host and port; undefined if it is none of these. */
export function parseHostPort(text: string): { host: string; port: number } | undefined {
  const match = /^(?:(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]+)):)?(\d+)$/.exec(text.trim());
  const port = match ? Number(match[3]) : NaN;
  if (!match || !(port >= 0 && port <= 65535)) return undefined;
  return { host: match[1] ?? match[2] ?? '127.0.0.1', port };
}

/** True for addresses only this host can reach. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export interface MetricsEndpointOptions {
  /** A scrape within this long of the last one gets the same text. Default 1000 ms. */
  minIntervalMs?: number;
  /** Sockets open at once; more are closed on accept. Default 64. */
  maxConnections?: number;
  /** A socket must send its request headers within this long. Default 5000 ms. */
  headersTimeoutMs?: number;
  /** A kept-alive socket idle this long is closed. Default 5000 ms. */
  idleTimeoutMs?: number;
}

export interface MetricsEndpoint {
  url: string;
  /** Scrapes answered, and how many of them computed the text anew (tests, diagnostics). */
  /** `longestExpositionMs`: the slowest exposition so far, as the server timed it (what a freeze would show). */
  readonly stats: { scrapes: number; expositions: number; longestExpositionMs: number };
  close(): Promise<void>;
}

/** Listens on `address`; a failed listen rejects with Node's error (its `code`: EADDRINUSE, EACCES, ...). */
export async function serveMetrics(metrics: PmuMetrics, address: { host: string; port: number }, options: MetricsEndpointOptions = {}): Promise<MetricsEndpoint> {
  const minIntervalMs = options.minIntervalMs ?? 1000;
  const headersTimeoutMs = options.headersTimeoutMs ?? 5000;
  const stats = { scrapes: 0, expositions: 0, longestExpositionMs: 0 };
  let last: { at: number; text: Promise<string> } | undefined;
  const exposition = () => {
    if (!last || Date.now() - last.at >= minIntervalMs) {
      stats.expositions++;
      const started = performance.now();
      const text = metrics.registry.metrics();
      void text.then(() => (stats.longestExpositionMs = Math.max(stats.longestExpositionMs, performance.now() - started)), () => undefined);
      last = { at: Date.now(), text };
      text.catch(() => (last = undefined)); // a failed exposition is not reused
    }
    return last.text;
  };
  const server = http.createServer({ headersTimeout: headersTimeoutMs, requestTimeout: headersTimeoutMs * 2, keepAliveTimeout: options.idleTimeoutMs ?? 5000 }, (request, response) => {
    if (request.method !== 'GET' || (request.url ?? '').split('?')[0] !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('pmu: only GET /metrics here\n');
      return;
    }
    stats.scrapes++;
    exposition().then(
      (text) => response.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
      (error: Error) => response.writeHead(500, { 'content-type': 'text/plain' }).end(`pmu: metrics failed: ${error.message}\n`),
    );
  });
  const maxConnections = options.maxConnections ?? 64;
  const open = new Set<Socket>();
  /** Sockets that have not sent a request yet, oldest first. */
  const silent = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    if (open.size >= maxConnections) {
      const oldest = silent.values().next().value;
      if (oldest === undefined) return void socket.destroy();
      silent.delete(oldest);
      oldest.destroy();
    }
    open.add(socket);
    silent.add(socket);
    socket.on('close', () => {
      open.delete(socket);
      silent.delete(socket);
    });
    // A socket that connects and never sends a byte: Node's headersTimeout only starts with the first byte.
    socket.setTimeout(headersTimeoutMs, () => socket.destroy());
  });
  server.on('request', (request: http.IncomingMessage) => silent.delete(request.socket));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host, () => resolve());
  });
  const bound = server.address() as AddressInfo;
  const host = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  return {
    url: `http://${host}:${bound.port}/metrics`,
    stats,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
