/**
 * --set-ca FILE (or PMU_SET_CA): the CA that signed the certificates of a set's PMUs, for those at
 * tls:// addresses. Pinning it means a directory entry pointed at another TLS server is refused
 * at the TLS handshake; the sessions are channel-bound either way (docs/PROTOCOL.md).
 */
import * as fs from 'node:fs';
import type * as tls from 'node:tls';
import { OptionSpec } from './args';
import { onFile } from './file-errors';

export const SET_CA_OPTION: OptionSpec = { type: 'string', value: 'FILE', help: "the CA (PEM) of the set's PMUs at tls:// addresses (or PMU_SET_CA)" };

export function setTlsFromArgs(values: Record<string, unknown>): tls.ConnectionOptions | undefined {
  const file = (values['set-ca'] as string | undefined) ?? (process.env.PMU_SET_CA || undefined);
  return file === undefined ? undefined : { ca: onFile('read', file, () => fs.readFileSync(file), '(--set-ca)') };
}
