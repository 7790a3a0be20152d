/**
 * Byte counts on the command line (--size, --capacity, --rate, --scrub), as `df -H`/`ls -l`
 * and IEC mean them: MB and GB are decimal (1MB = 1,000,000 bytes, what disks are sold in),
 * MiB and GiB binary (1MiB = 1,048,576). K, M, G and T alone could be either, so they are
 * refused with both readings, rather than guessed (the old reading of 1MB as 1MiB surprised).
 */
import { UsageError } from './args';

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

/** "4096", "64KiB", "16MiB", "1GB", "1.5GiB" -> bytes. */
export function parseSize(what: string, text: string | undefined): number {
  const given = String(text ?? '').trim();
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(given);
  const unitName = match?.[2].toLowerCase() ?? '';
  if (match && /^[kmgt]$/.test(unitName)) {
    const letter = unitName.toUpperCase();
    const binary = Number(match[1]) * UNITS[`${unitName}ib`];
    const decimal = Number(match[1]) * UNITS[`${unitName}b`];
    throw new UsageError(`${what} ${given} is ambiguous: write ${match[1]}${letter}iB (${Math.round(binary)} bytes) or ${match[1]}${letter}B (${Math.round(decimal)} bytes)`);
  }
  const unit = match ? UNITS[unitName] : undefined;
  const exact = match && unit !== undefined ? Number(match[1]) * unit : NaN;
  const value = Math.round(exact);
  // A fraction is fine while it names whole bytes (1.5GiB), not a part of one (1.5 bytes).
  if (!Number.isSafeInteger(value) || Math.abs(exact - value) > 1e-6) {
    throw new UsageError(`${what} must be a byte count such as 4096, 64KiB, 16MiB or 1GB (KB, MB, GB are powers of 1000; KiB, MiB, GiB of 1024), got ${JSON.stringify(text)}`);
  }
  return value;
}
