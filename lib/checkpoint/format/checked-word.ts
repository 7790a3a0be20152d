/**
 * Header words that recovery trusts but that must stay single 8-byte words (they are
 * compare-and-swapped, and the epoch is the write fence the PMU compares): each carries its
 * own check in its top byte. value = low 56 bits; top byte = CRC-8 (polynomial 0x07) over the
 * 7 value bytes and a tag naming the word, so a word copied to the wrong place fails too.
 * CRC-8 detects every burst of up to 8 bits: any flipped bit, any one damaged byte; other
 * garbage passes with probability 1/256 and then still meets the cross-checks of log-scan.ts.
 * Every legitimate value of such a word is a codeword, so a damaged epoch equals no writer's
 * fence (every writer is refused) and a damaged cursor is refused, never read as a number.
 */
import { PmuError } from '../../unit/errors';

export type WordName = 'epoch' | 'cursor position' | 'cursor sequence' | 'checkpoint mark';
const TAGS: Record<WordName, number> = { epoch: 0x45, 'cursor position': 0x50, 'cursor sequence': 0x53, 'checkpoint mark': 0x43 };
/** Largest value a checked word holds (56 bits): 64 PiB of log positions. */
const MAX_WORD_VALUE = (1n << 56n) - 1n;

function crc8(value: bigint, tag: number): number {
  let crc = 0;
  for (let i = 0; i < 8; i++) {
    crc ^= i < 7 ? Number((value >> BigInt(8 * i)) & 0xffn) : tag;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x80 ? ((crc << 1) ^ 0x07) & 0xff : (crc << 1) & 0xff;
  }
  return crc;
}

export function encodeWord(name: WordName, value: bigint | number): bigint {
  const v = BigInt(value);
  if (v < 0n || v > MAX_WORD_VALUE) throw new PmuError('EINVAL', `the ${name} ${v} does not fit a checked header word (56 bits): format the region again`);
  return v | (BigInt(crc8(v, TAGS[name])) << 56n);
}

/** The value of a checked word, or undefined if its check fails. */
export function tryDecodeWord(name: WordName, word: bigint): bigint | undefined {
  const value = word & MAX_WORD_VALUE;
  return Number(word >> 56n) === crc8(value, TAGS[name]) ? value : undefined;
}

export function decodeWord(name: WordName, word: bigint, regionName: string, offset: number): bigint {
  const value = tryDecodeWord(name, word);
  if (value === undefined) throw damagedWord(name, word, regionName, offset);
  return value;
}

function damagedWord(name: WordName, word: bigint, regionName: string, offset: number): PmuError {
  return new PmuError(
    'ECORRUPT',
    `region '${regionName}': the checkpoint ${name} word (header bytes ${offset}-${offset + 7}, 0x${word.toString(16).padStart(16, '0')}) fails its check: it is damaged and recovery cannot trust it; nothing was written. Run 'pmu inspect --verify FILE' and restore the region from a mirror or a backup`,
  );
}
