/**
 * The etcd login flags shared by `pmu serve --join` and `pmu cluster`: a user and a password read
 * from a file or the environment (never from argv, where ps shows it to everyone), and the TLS
 * files. A flag wins over its variable.
 */
import * as fs from 'node:fs';
import type { DirectoryOptions } from '../mirror/directory';
import { PmuError } from '../unit/errors';
import { OptionGroup, OptionTable, UsageError } from './args';
import { onFile } from './file-errors';

const ETCD_LOGIN: OptionGroup = { heading: 'etcd with authentication or TLS (docs/MIRROR.md)', usage: 'etcd login options' };

export const ETCD_LOGIN_OPTIONS: OptionTable = {
  'etcd-user': { type: 'string', value: 'NAME', group: ETCD_LOGIN, help: 'etcd user to log in as (or PMU_ETCD_USER), for an etcd with auth on' },
  'etcd-password-file': {
    type: 'string',
    value: 'FILE',
    group: ETCD_LOGIN,
    help: "its password, alone on the file's first line; readable by you only\n(or PMU_ETCD_PASSWORD_FILE, or the password itself in PMU_ETCD_PASSWORD);\nnever in the URL or on the command line",
  },
  'etcd-ca': { type: 'string', value: 'FILE', group: ETCD_LOGIN, help: "CA (PEM) that signed etcd's certificate, for https:// (or PMU_ETCD_CA; default: the system's CAs)" },
  'etcd-cert': { type: 'string', value: 'FILE', group: ETCD_LOGIN, help: 'client certificate (PEM) for an etcd that asks for one (or PMU_ETCD_CERT)' },
  'etcd-key': { type: 'string', value: 'FILE', group: ETCD_LOGIN, help: '... and its private key (PEM) (or PMU_ETCD_KEY)' },
};

/** A password given on the command line is refused before parsing: parseArgs would only call it unknown. */
export function refusePasswordArgument(argv: string[]): void {
  if (argv.some((token) => /^--etcd-pass(word)?(=|$)/.test(token))) {
    throw new UsageError('pmu takes no etcd password on the command line (ps shows it to everyone): put it in a file only you can read and give --etcd-password-file FILE, or set PMU_ETCD_PASSWORD');
  }
}

type Values = Record<string, unknown>;

function setting(values: Values, flag: string, variable: string): string | undefined {
  return (values[flag] as string | undefined) ?? (process.env[variable] || undefined);
}

/** The etcdAuth and etcdTls options the flags and variables ask for; files are read here. */
export function etcdLoginFromArgs(values: Values): Pick<DirectoryOptions, 'etcdAuth' | 'etcdTls'> {
  const username = setting(values, 'etcd-user', 'PMU_ETCD_USER');
  const passwordFile = setting(values, 'etcd-password-file', 'PMU_ETCD_PASSWORD_FILE');
  const password = passwordFile !== undefined ? readPasswordFile(passwordFile) : process.env.PMU_ETCD_PASSWORD || undefined;
  if (username === undefined && password !== undefined) throw new UsageError('an etcd password needs its user: --etcd-user NAME or PMU_ETCD_USER');
  if (username !== undefined && password === undefined) throw new UsageError(`etcd user '${username}' needs its password: --etcd-password-file FILE, PMU_ETCD_PASSWORD_FILE or PMU_ETCD_PASSWORD`);
  const read = (flag: 'etcd-ca' | 'etcd-cert' | 'etcd-key', variable: string) => {
    const file = setting(values, flag, variable);
    return file === undefined ? undefined : onFile('read', file, () => fs.readFileSync(file), `(--${flag})`);
  };
  const tls = { ca: read('etcd-ca', 'PMU_ETCD_CA'), cert: read('etcd-cert', 'PMU_ETCD_CERT'), key: read('etcd-key', 'PMU_ETCD_KEY') };
  return {
    etcdAuth: username !== undefined ? { username, password: password! } : undefined,
    etcdTls: tls.ca || tls.cert || tls.key ? tls : undefined,
  };
}

/** The password on the file's first line; refused, as ssh refuses a key, if others may read the file. */
function readPasswordFile(file: string): string {
  const stat = onFile('read', file, () => fs.statSync(file), '(--etcd-password-file)');
  if (!stat.isFile()) throw new PmuError('EINVAL', `the etcd password file ${file} is not a regular file`);
  if ((stat.mode & 0o077) !== 0) {
    const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
    throw new PmuError('EACCESS', `the etcd password file ${file} has mode ${mode}: group or others may read it, so pmu refuses it; make it private with: chmod 600 ${file}`);
  }
  const text = onFile('read', file, () => fs.readFileSync(file, 'utf8'), '(--etcd-password-file)');
  const lines = text.replace(/\r?\n$/, '').split(/\r?\n/);
  if (lines.length > 1) throw new PmuError('EINVAL', `the etcd password file ${file} holds more than one line: put the password alone on its first line`);
  if (lines[0] === '') throw new PmuError('EINVAL', `the etcd password file ${file} is empty: put the password on its first line`);
  return lines[0];
}
