/**
 * The one error class of pmu. `code` is stable and the same whether the failure happened in
 * the addon, in the server, or in a client that rebuilt it from a wire reply; branch on it,
 * never on the message. The message says what to do.
 */
export type PmuErrorCode =
  // native core (native/core/status.h, same order there)
  | 'EINVAL'
  | 'EBOUNDS'
  | 'ECORRUPT'
  | 'ELOCKED'
  | 'ENOSPC'
  | 'EEXIST'
  | 'ENOENT'
  | 'ETOOMANY'
  | 'EIO'
  | 'ECLOSED'
  | 'EBUSY'
  | 'EALIGN'
  | 'EFENCED'
  | 'ESYS'
  // network and protection
  | 'EAUTH'
  | 'EACCESS'
  | 'EKEY'
  | 'EPROTO'
  | 'ETIMEDOUT'
  | 'ECONNECTION'
  | 'EFRAMETOOBIG'
  // checkpoint protocol
  | 'EFULL'
  | 'ETOOBIG'
  | 'ETAKEN'
  // mirrored regions (lib/mirror): never sent on the wire
  | 'EETCD'
  | 'ECONFIG'
  | 'EROLLBACK';

export class PmuError extends Error {
  readonly code: PmuErrorCode;

  constructor(code: PmuErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PmuError';
    this.code = code;
  }
}

export function isPmuError(value: unknown, code?: PmuErrorCode): value is PmuError {
  return value instanceof PmuError && (code === undefined || value.code === code);
}
