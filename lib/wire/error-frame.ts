/**
 * Errors on the wire. The server sends the PmuError's code and message; the client rebuilds
 * a PmuError with the same code and the server's message, so a caller branches on the same
 * code whether its region is local or remote.
 */
import { PmuError, PmuErrorCode } from '../unit/errors';

/** Every code a peer may send. A code outside this list is itself a protocol error. */
const KNOWN_CODES: ReadonlySet<string> = new Set<PmuErrorCode>([
  'EINVAL', 'EBOUNDS', 'ECORRUPT', 'ELOCKED', 'ENOSPC', 'EEXIST', 'ENOENT', 'ETOOMANY', 'EIO', 'ECLOSED', 'EBUSY',
  'EALIGN', 'EFENCED', 'ESYS', 'EAUTH', 'EACCESS', 'EKEY', 'EPROTO', 'ETIMEDOUT', 'ECONNECTION', 'EFRAMETOOBIG',
  'EFULL', 'ETOOBIG', 'ETAKEN',
]);

/** ERROR body: u8 codeLength | code (ASCII) | message (UTF-8, the rest). */
export function encodeError(code: PmuErrorCode, message: string): Buffer {
  const codeBytes = Buffer.from(code, 'latin1');
  const messageBytes = Buffer.from(message, 'utf8');
  const body = Buffer.allocUnsafe(1 + codeBytes.length + messageBytes.length);
  body[0] = codeBytes.length;
  codeBytes.copy(body, 1);
  messageBytes.copy(body, 1 + codeBytes.length);
  return body;
}

export function decodeError(body: Buffer, peer: string): PmuError {
  const codeLength = body.length > 0 ? body[0] : 0;
  const code = body.subarray(1, 1 + codeLength).toString('latin1');
  if (body.length < 1 + codeLength || !KNOWN_CODES.has(code)) {
    return new PmuError('EPROTO', `${peer} sent an ERROR frame with an unknown code ${JSON.stringify(code)}`);
  }
  return new PmuError(code as PmuErrorCode, body.subarray(1 + codeLength).toString('utf8'));
}

/** The code to report for anything thrown while serving a request. */
export function errorCodeOf(error: unknown): { code: PmuErrorCode; message: string } {
  if (error instanceof PmuError) return { code: error.code, message: error.message };
  return { code: 'ESYS', message: error instanceof Error ? error.message : String(error) };
}
