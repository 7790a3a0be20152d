'use strict';
// Bytes written to the block device behind a path, from /sys/block/<dev>/stat (field 7 is
// sectors written, 512 bytes each). Shows whether an msync of 4 KiB wrote 4 KiB or a folio.
const fs = require('node:fs');

function deviceFor(dir) {
  try {
    const { dev } = fs.statSync(dir);
    const major = Math.floor(dev / 256) & 0xfff;
    const minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
    const link = fs.realpathSync(`/sys/dev/block/${major}:${minor}`);
    // A partition's stat is its own; a whole disk's is too. Either is what we want.
    return fs.existsSync(`${link}/stat`) ? `${link}/stat` : undefined;
  } catch {
    return undefined;
  }
}

function sectorsWritten(statFile) {
  const fields = fs.readFileSync(statFile, 'utf8').trim().split(/\s+/);
  return Number(fields[6]);
}

/** Runs fn and returns the bytes the device wrote meanwhile (undefined where unknown). */
async function bytesWrittenDuring(dir, fn) {
  const statFile = deviceFor(dir);
  const before = statFile ? sectorsWritten(statFile) : 0;
  const result = await fn();
  const bytes = statFile ? (sectorsWritten(statFile) - before) * 512 : undefined;
  return { result, bytes };
}

module.exports = { bytesWrittenDuring, deviceFor };
