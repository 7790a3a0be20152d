/** Server addresses as URLs: tcp://host:port, tls://host:port, unix:/path/to/socket. */
import { PmuError } from '../unit/errors';

export type Endpoint =
  | { kind: 'tcp'; host: string; port: number; tls: boolean; url: string }
  | { kind: 'unix'; path: string; url: string };

export function parseUrl(url: string): Endpoint {
  if (typeof url !== 'string') throw new PmuError('EINVAL', 'url must be a string such as tcp://127.0.0.1:7420 or unix:/path/pmu.sock');
  if (url.startsWith('unix:')) {
    const path = url.slice('unix:'.length).replace(/^\/\/(?=\/)/, '');
    if (path.length === 0) throw new PmuError('EINVAL', `url ${url} names no socket path; write unix:/path/pmu.sock`);
    return { kind: 'unix', path, url };
  }
  const match = /^(tcp|tls):\/\/(\[[^\]]+\]|[^:/]+):(\d{1,5})\/?$/.exec(url);
  if (!match) throw new PmuError('EINVAL', `url ${JSON.stringify(url)} is not tcp://HOST:PORT, tls://HOST:PORT or unix:/PATH`);
  const port = Number(match[3]);
  if (port < 1 || port > 65535) throw new PmuError('EINVAL', `url ${url}: port must be 1 to 65535`);
  return { kind: 'tcp', host: match[2].replace(/^\[|\]$/g, ''), port, tls: match[1] === 'tls', url };
}
