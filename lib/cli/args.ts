/**
 * The command line of one command, from one table: each option's entry gives node:util
 * parseArgs its config AND the help its usage line and option list are printed from
 * (lib/cli/help.ts), so what the help says and what the parser takes cannot drift apart.
 */
import { parseArgs, ParseArgsConfig } from 'node:util';
import { DEFAULT_METRICS_PORT, parseHostPort } from '../obs/metrics-endpoint';

/** A mistake in the command line: main prints it with the command's help hint and exits 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A heading in the option list; with `usage`, the usage line shows `[usage]` instead of each of its options. */
export interface OptionGroup {
  heading: string;
  usage?: string;
}

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** The value's name in the help (BYTES, DIR); string options only. */
  value?: string;
  /** What it does; '\n' starts a continuation line. */
  help: string;
  /** Listed under this heading rather than with the command's own options. */
  group?: OptionGroup;
  /** Left out of the usage line (still in the option list): for options that go with another. */
  hideInUsage?: boolean;
}

export type OptionTable = Record<string, OptionSpec>;

export interface Parsed {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
}

/** -h/--help is every command's; main answers it before the command runs. */
export const HELP_OPTION: OptionSpec = { type: 'boolean', short: 'h', help: 'print this help' };

export function parseConfig(table: OptionTable): NonNullable<ParseArgsConfig['options']> {
  const options: NonNullable<ParseArgsConfig['options']> = {};
  for (const [name, spec] of Object.entries({ ...table, help: HELP_OPTION })) {
    options[name] = { type: spec.type, ...(spec.short ? { short: spec.short } : {}), ...(spec.multiple ? { multiple: true } : {}) };
  }
  return options;
}

/**
 * Parses `argv` against `table`. Mistakes are found on parseArgs's tokens, not by reading its
 * messages, and said in one line each: an unknown option with the nearest known one, an option
 * missing its value, a value given to a switch.
 */
export function parse(argv: string[], table: OptionTable): Parsed {
  const options = parseConfig(table);
  const args = attachNegativeValues(argv, options);
  const { tokens } = parseArgs({ args, options, allowPositionals: true, strict: false, tokens: true });
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    const spec = options[token.name];
    if (!spec) throw new UsageError(`unknown option ${token.rawName}${suggest(token.rawName, options)}`);
    const shown = token.rawName.startsWith('--') ? token.rawName : `${token.rawName} (--${token.name})`;
    if (spec.type === 'boolean' && token.value !== undefined) throw new UsageError(`${shown} takes no value, got ${JSON.stringify(token.value)}`);
    // Non-strict parseArgs lets `--size --json` take "--json" as the value: in strict mode it is a missing value.
    if (spec.type === 'string' && (token.value === undefined || (!token.inlineValue && token.value.startsWith('-')))) {
      const name = table[token.name]?.value;
      throw new UsageError(`${shown} needs a value${name ? ` (${name})` : ''}`);
    }
  }
  const { values, positionals } = parseArgs({ args, options, allowPositionals: true, strict: true });
  return { values: values as Parsed['values'], positionals };
}

/** `; did you mean --metrics?` when one known option is a typo away, else nothing. */
function suggest(raw: string, options: NonNullable<ParseArgsConfig['options']>): string {
  if (!raw.startsWith('--')) return '';
  const wanted = raw.slice(2);
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const name of Object.keys(options)) {
    const distance = name.startsWith(wanted) || wanted.startsWith(name) ? Math.min(1, Math.abs(name.length - wanted.length)) : editDistance(wanted, name);
    if (distance < bestDistance) [best, bestDistance] = [name, distance];
  }
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(wanted.length / 3)) ? `; did you mean --${best}?` : '';
}

/** Edits (insert, delete, change, or swap two neighbours: --jsno) from a to b. */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/**
 * `--offset -5` would make parseArgs call the argument "ambiguous" (it looks like an option):
 * join a negative number to the option that takes a value, so the option's own check can say
 * what range it accepts.
 */
function attachNegativeValues(argv: string[], options: NonNullable<ParseArgsConfig['options']>): string[] {
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
