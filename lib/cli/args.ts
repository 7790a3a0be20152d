/** Argument parsing shared by the commands: node:util parseArgs plus size and integer parsing with clear messages. */
import { parseArgs, ParseArgsConfig } from 'node:util';
import { DEFAULT_METRICS_PORT, parseHostPort } from '../obs/metrics-endpoint';

/** A mistake in the command line: main prints it with the command's usage hint and exits 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export type Options = NonNullable<ParseArgsConfig['options']>;

export interface Parsed {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
}

export function parse(argv: string[], options: Options): Parsed {
  try {
    const { values, positionals } = parseArgs({ args: attachNegativeValues(argv, options), options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
    return { values: values as Parsed['values'], positionals };
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/**
 * `--offset -5` would make parseArgs call the argument "ambiguous" (it looks like an option):
 * join a negative number to the option that takes a value, so the option's own check can say
 * what range it accepts.
 */
function attachNegativeValues(argv: string[], options: Options): string[] {
  const takesValue = (token: string) => {
    if (token.startsWith('--')) return options[token.slice(2)]?.type === 'string';
    if (/^-[A-Za-z]$/.test(token)) return Object.values(options).some((o) => o.short === token[1] && o.type === 'string');
    return false;
  };
  const result: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i];
    if (token === '--') return [...result, ...argv.slice(i)];
    if (takesValue(token) && i + 1 < argv.length && /^-\d/.test(argv[i + 1])) {
      result.push(`${token}=${argv[++i]}`);
      continue;
    }
    result.push(token);
  }
  return result;
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kib: 1024, kb: 1024, m: 1024 ** 2, mib: 1024 ** 2, mb: 1024 ** 2, g: 1024 ** 3, gib: 1024 ** 3, gb: 1024 ** 3 };

/** "4096", "64KiB", "16M", "1g" -> bytes (binary units). */
export function parseSize(what: string, text: string | undefined): number {
  const match = /^(\d+)\s*([a-z]*)$/i.exec(String(text ?? '').trim());
  const unit = match ? UNITS[match[2].toLowerCase()] : undefined;
  const value = match && unit ? Number(match[1]) * unit : NaN;
  if (!Number.isSafeInteger(value)) throw new UsageError(`${what} must be a byte count such as 4096, 64KiB or 16MiB, got ${JSON.stringify(text)}`);
  return value;
}

export function parseInteger(what: string, text: string | undefined, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const value = /^\d+$/.test(String(text ?? '')) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) throw new UsageError(`${what} must be an integer from ${min} to ${max}, got ${JSON.stringify(text)}`);
  return value;
}

export function out(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : text + '\n');
}

/** `--metrics HOST:PORT` ("127.0.0.1:9464", "[::1]:9464", or a port alone for loopback). */
export function parseMetricsAddress(text: string): { host: string; port: number } {
  const address = parseHostPort(text);
  if (!address) throw new UsageError(`--metrics must be HOST:PORT such as 127.0.0.1:${DEFAULT_METRICS_PORT}, got ${JSON.stringify(text)}`);
  return address;
}
