/**
 * Where a client command connects and as whom: --url / --user / --secret, else PMU_URL /
 * PMU_USER / PMU_SECRET, else the admin credential `pmu serve` left in the data directory
 * (./pmu-data unless --data says otherwise), else tcp://127.0.0.1:7420.
 */
import * as fs from 'node:fs';
import { PmuClient } from '../client/client';
import { DEFAULT_HOST, DEFAULT_PORT } from '../server/server';
import { OptionGroup, OptionTable, Parsed, UsageError } from './args';
import { PmuError } from '../unit/errors';
import { dataDir, readCredential } from './data-dir';

const CONNECTION: OptionGroup = { heading: 'Connection (else PMU_URL, PMU_USER, PMU_SECRET, else the admin credential in ./pmu-data)', usage: 'connection options' };

export const CONNECTION_OPTIONS: OptionTable = {
  url: { type: 'string', value: 'URL', group: CONNECTION, help: 'tcp://HOST:PORT, tls://HOST:PORT or unix:/PATH' },
  user: { type: 'string', value: 'NAME', group: CONNECTION, help: 'user name' },
  secret: { type: 'string', value: 'SECRET', group: CONNECTION, help: "the user's secret (prefer PMU_SECRET: arguments show in ps)" },
  data: { type: 'string', value: 'DIR', group: CONNECTION, help: 'data directory whose admin credential to use (default ./pmu-data)' },
  timeout: { type: 'string', value: 'MS', group: CONNECTION, help: 'deadline per request (default 10000)' },
  'tls-ca': { type: 'string', value: 'FILE', group: CONNECTION, help: 'for tls:// URLs: trust this certificate (PEM; else PMU_TLS_CA, else the\none `pmu serve --tls-cert` recorded in the admin credential)' },
};

export async function connectFromArgs(parsed: Parsed): Promise<PmuClient> {
  const values = parsed.values;
  const layout = dataDir(values.data as string | undefined);
  // An empty environment variable counts as unset.
  const env = (name: string) => process.env[name] || undefined;
  // Read only when something is missing: one refused (another user's, a link, others may
  // write it) stops the command, and a command told everything has no use for it.
  const toldUrl = (values.url as string | undefined) ?? env('PMU_URL');
  const toldCa = !toldUrl?.startsWith('tls:') || ((values['tls-ca'] as string | undefined) ?? env('PMU_TLS_CA'));
  const told = ((values.user as string | undefined) ?? env('PMU_USER')) && ((values.secret as string | undefined) ?? env('PMU_SECRET')) && toldUrl && toldCa;
  const credential = told ? undefined : readCredential(layout.credentialFile);
  const user = (values.user as string | undefined) ?? env('PMU_USER') ?? credential?.user;
  const secret = (values.secret as string | undefined) ?? env('PMU_SECRET') ?? (user === credential?.user ? credential?.secret : undefined);
  if (user && !secret) {
    // Named, but with no secret to go with the name: the credential file is there or not, it is not the one missing.
    const named = values.user !== undefined ? '--user' : 'PMU_USER';
    const why = credential ? `${layout.credentialFile} holds the secret of '${credential.user}', not of '${user}'` : `there is no ${layout.credentialFile} to read one from`;
    throw new UsageError(`${named} is '${user}' but no secret is given (${why}): set PMU_SECRET or pass --secret, or unset ${named} to use the admin credential`);
  }
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
  try {
    return await PmuClient.connect(url, { user, secret, timeoutMs, tls });
  } catch (error) {
    throw withServeHint(error, url);
  }
}

/** Nothing listens there (refused, or no socket file): the likely cause is a server not started. */
function withServeHint(error: unknown, url: string): unknown {
  const cause = (error as { cause?: NodeJS.ErrnoException }).cause?.code;
  if (!(error instanceof PmuError) || error.code !== 'ECONNECTION' || (cause !== 'ECONNREFUSED' && cause !== 'ENOENT')) return error;
  return new PmuError('ECONNECTION', `${error.message}: is \`pmu serve\` running at ${url}? start it with \`pmu serve\``, { cause: error });
}
