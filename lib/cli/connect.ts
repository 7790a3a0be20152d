/**
 * Where a client command connects and as whom: --url / --user / --secret, else PMU_URL /
 * PMU_USER / PMU_SECRET, else the admin credential `pmu serve` left in the data directory
 * (./pmu-data unless --data says otherwise), else tcp://127.0.0.1:7420.
 */
import * as fs from 'node:fs';
import { PmuClient } from '../client/client';
import { DEFAULT_HOST, DEFAULT_PORT } from '../server/server';
import { Options, Parsed, UsageError } from './args';
import { dataDir, readCredential } from './data-dir';

export const CONNECTION_OPTIONS: Options = {
  url: { type: 'string' },
  user: { type: 'string' },
  secret: { type: 'string' },
  data: { type: 'string' },
  timeout: { type: 'string' },
  'tls-ca': { type: 'string' },
};

export const CONNECTION_HELP = `Connection (else PMU_URL, PMU_USER, PMU_SECRET, else the admin credential in ./pmu-data):
  --url URL        tcp://HOST:PORT, tls://HOST:PORT or unix:/PATH
  --user NAME      user name
  --secret SECRET  the user's secret (prefer PMU_SECRET: arguments show in ps)
  --data DIR       data directory whose admin credential to use (default ./pmu-data)
  --timeout MS     deadline per request (default 10000)
  --tls-ca FILE    for tls:// URLs: trust this certificate (PEM; else PMU_TLS_CA, else the
                   one \`pmu serve --tls-cert\` recorded in the admin credential)`;

export async function connectFromArgs(parsed: Parsed): Promise<PmuClient> {
  const values = parsed.values;
  const layout = dataDir(values.data as string | undefined);
  const credential = readCredential(layout.credentialFile);
  // An empty environment variable counts as unset.
  const env = (name: string) => process.env[name] || undefined;
  const user = (values.user as string | undefined) ?? env('PMU_USER') ?? credential?.user;
  const secret = (values.secret as string | undefined) ?? env('PMU_SECRET') ?? (user === credential?.user ? credential?.secret : undefined);
  if (!user || !secret) throw new UsageError(`no credentials: pass --user and --secret, set PMU_USER and PMU_SECRET, or run where ${layout.credentialFile} exists`);
  const savedUnix = credential?.unix && fs.existsSync(credential.unix.slice('unix:'.length)) ? credential.unix : undefined;
  const url = (values.url as string | undefined) ?? env('PMU_URL') ?? savedUnix ?? credential?.tcp ?? `tcp://${DEFAULT_HOST}:${DEFAULT_PORT}`;
  const timeoutMs = values.timeout === undefined ? undefined : Number(values.timeout);
  if (timeoutMs !== undefined && !(Number.isSafeInteger(timeoutMs) && timeoutMs > 0)) throw new UsageError(`--timeout must be a positive integer of milliseconds, got ${JSON.stringify(values.timeout)}`);
  const caFile = (values['tls-ca'] as string | undefined) ?? env('PMU_TLS_CA') ?? (url === credential?.tcp ? credential?.tlsCa : undefined);
  let tls;
  if (caFile && url.startsWith('tls:')) {
    try {
      tls = { ca: fs.readFileSync(caFile) };
    } catch (error) {
      throw new UsageError(`cannot read the TLS certificate to trust, ${caFile}: ${(error as Error).message}`);
    }
  }
  return PmuClient.connect(url, { user, secret, timeoutMs, tls });
}
