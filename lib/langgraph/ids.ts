/**
 * Checks for the identifiers a saver stores (thread ids, namespaces, checkpoint and task ids,
 * channel names). Any well-formed string can be stored (they are length-prefixed, so no
 * separator is reserved); a string with a lone UTF-16 surrogate cannot round-trip through UTF-8
 * (two different ids would become the same one), so it is refused, as are non-strings.
 */
import { PmuError } from '../unit/errors.js';
import { isWellFormed } from '../unit/validate.js';

/** Longest id, in UTF-8 bytes: ids are index keys, not payloads. */
export const MAX_ID_BYTES = 4096;

export function checkId(name: string, value: unknown, allowEmpty = false): string {
  if (typeof value !== 'string') {
    throw new PmuError('EINVAL', `${name} must be a string, got ${value === null ? 'null' : typeof value}`);
  }
  if (!allowEmpty && value.length === 0) throw new PmuError('EINVAL', `${name} must not be empty`);
  if (!isWellFormed(value)) throw new PmuError('EINVAL', `${name} holds a lone UTF-16 surrogate, which cannot be stored as UTF-8: use a well-formed string`);
  if (value.length > MAX_ID_BYTES / 3 && Buffer.byteLength(value, 'utf8') > MAX_ID_BYTES) {
    throw new PmuError('EINVAL', `${name} is longer than ${MAX_ID_BYTES} bytes of UTF-8: use a shorter id (a hash of it, say)`);
  }
  return value;
}

/** thread_id is required for writes; LangGraph configs sometimes carry it as a number. */
export function checkThreadId(value: unknown): string {
  if (value === undefined || value === null || value === '') {
    throw new PmuError('EINVAL', 'config.configurable.thread_id is missing: pass one, e.g. graph.invoke(input, { configurable: { thread_id: "1" } })');
  }
  return checkId('thread_id', typeof value === 'number' && Number.isFinite(value) ? String(value) : value);
}

/** checkpoint_ns defaults to the root namespace ''. */
export function checkNamespace(value: unknown): string {
  return value === undefined || value === null ? '' : checkId('checkpoint_ns', value, true);
}

/** An optional id: undefined when absent or empty. */
export function optionalId(name: string, value: unknown): string | undefined {
  return value === undefined || value === null || value === '' ? undefined : checkId(name, value);
}
