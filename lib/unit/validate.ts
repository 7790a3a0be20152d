/** Argument checks at the API boundary, with messages that name the argument and the value. */
import { PmuError } from './errors';

export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value);
  if (typeof value === 'bigint') return `${value}n`;
  if (value === null || typeof value !== 'object') return String(value);
  return Object.prototype.toString.call(value);
}

export function checkInteger(name: string, value: unknown, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new PmuError('EINVAL', `${name} must be an integer from ${min} to ${max}, got ${describe(value)}`);
  }
  return value;
}

export function checkBytes(name: string, value: unknown): Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new PmuError('EINVAL', `${name} must be a Buffer or Uint8Array, got ${describe(value)}`);
  }
  return value;
}

export function checkU64(name: string, value: unknown): bigint {
  if (typeof value !== 'bigint' || value < 0n || value > 0xffff_ffff_ffff_ffffn) {
    throw new PmuError('EINVAL', `${name} must be a bigint from 0n to 2n ** 64n - 1n, got ${describe(value)}`);
  }
  return value;
}

/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const nativeIsWellFormed = (String.prototype as unknown as { isWellFormed?: (this: string) => boolean }).isWellFormed;

/**
 * False exactly when `value` holds a lone surrogate: String.prototype.isWellFormed where it
 * exists (Node 20, and fast: ids are checked on every LangGraph put), the regex on the arm64
 * prebuild's Node 18 test host, which lacks it.
 */
export function isWellFormed(value: string): boolean {
  return nativeIsWellFormed ? nativeIsWellFormed.call(value) : !LONE_SURROGATE.test(value);
}

export function checkName(name: string, value: unknown, maxBytes: number): string {
  // A lone surrogate has no UTF-8 form: stored, it would silently become U+FFFD.
  if (typeof value !== 'string' || value.length === 0 || Buffer.byteLength(value) > maxBytes || value.includes('\0') || !isWellFormed(value)) {
    throw new PmuError('EINVAL', `${name} must be a string of 1 to ${maxBytes} UTF-8 bytes without NUL or lone surrogates, got ${describe(value)}`);
  }
  return value;
}

/** C0 and C1 control characters and DEL: a name holding one can rewrite a terminal (escape sequences) or forge lines of output. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** checkName for a name being made: control characters are refused too (names made before stay openable). */
export function checkNewName(name: string, value: unknown, maxBytes: number): string {
  checkName(name, value, maxBytes);
  if (CONTROL.test(value as string)) throw new PmuError('EINVAL', `${name} must not hold control characters (newlines, escapes), got ${JSON.stringify(value)}`);
  return value as string;
}

/** `text` with control characters escaped (\n, \u001b): for printing names someone else chose. */
export function printable(text: string): string {
  return text.replace(new RegExp(CONTROL.source, 'g'), (c) => (c === '\n' ? '\\n' : c === '\t' ? '\\t' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

/** EBOUNDS unless [offset, offset + length) lies inside a region of `size` bytes. */
export function checkRange(regionName: string, size: number, offset: number, length: number, what: string): void {
  if (offset > size || length > size - offset) {
    throw new PmuError(
      'EBOUNDS',
      `${what} of ${length} bytes at offset ${offset} is outside region '${regionName}' (${size} bytes): keep offset + length <= ${size}`,
    );
  }
}
