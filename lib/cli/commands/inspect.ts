/**
 * pmu inspect: an offline dump of a PMU file's two metadata copies and its table; with
 * --verify, a check of everything recovery trusts. Never locks the file and never writes.
 */
import * as fs from 'node:fs';
import { verifyRegion, RegionVerdict } from '../../checkpoint/verify';
import { inspectFile } from '../../unit/unit';
import { out, parse, UsageError } from '../args';
import { Command } from '../command';
import { FileRegion } from '../file-region';

type Report = ReturnType<typeof inspectFile>;

export const inspect: Command = {
  summary: 'dump a PMU file\'s metadata copies and region table (offline); --verify checks it',
  usage: `Usage: pmu inspect FILE [--verify] [--json]

Reads FILE without locking it (works while a server has it open) and prints both metadata
copies (state, generation, problem), the recovery note (what open had to do), the unit's
geometry and every region: name, handle, virtual base, length, physical offset, owner and
grants. Access keys are never printed. Exit status 1 when no metadata copy is valid.

--verify also checks, read-only: both metadata copies; in every region holding a checkpoint
log, its header, its checked words (epoch, cursor) and the CRC of every live record (append
mode: from the cursor on; the rest of the ring is stale and reported as such), and whether
anything acknowledged follows a damaged record; overwrite mode: both slots. Regions that are
not checkpoint logs are reported as raw. Exit status 0 when all is well, 1 with a report of
each problem otherwise.`,
  async run(argv) {
    const { values, positionals } = parse(argv, { json: { type: 'boolean' }, verify: { type: 'boolean' } });
    if (positionals.length !== 1) throw new UsageError('pmu inspect needs exactly one FILE');
    const file = positionals[0];
    const report = inspectFile(file);
    const regions = (report.regions ?? []).map(({ key: _key, ...entry }) => entry);
    const verification = values.verify ? await verify(file, report) : undefined;
    if (values.json) {
      out(JSON.stringify({ ...report, regions, ...(verification ? { verify: verification } : {}) }, null, 2));
    } else {
      out(`file        ${report.info?.path ?? file}`);
      out(`status      ${report.status}${report.problem ? `: ${report.problem}` : ''}`);
      out(`commit      ${report.commit.state}, generation ${report.commit.generation}${report.commit.problem ? ` (${report.commit.problem})` : ''}`);
      report.copies.forEach((copy, index) => out(`copy ${'AB'[index]}      ${copy.state}, generation ${copy.generation}${copy.problem ? ` (${copy.problem})` : ''}`));
      out(`recovery    ${report.recoveryNote || 'none: the newest metadata copy is valid'}`);
      if (report.info) {
        const info = report.info;
        out(`size        ${info.size} bytes, data from offset ${info.dataOffset}, uuid ${info.uuid}`);
        out(`table       ${info.regionCount} of ${info.maxRegions} regions, generation ${info.generation}`);
        out(`free        ${info.freeBytes} bytes, largest extent ${info.largestFreeExtent}`);
      }
      for (const entry of regions) {
        const grants = entry.grants.map((g) => `${g.user}=${g.rights === 3 ? 'rw' : 'r'}`).join(',') || '-';
        out(`region      ${entry.name}\thandle ${entry.handle}\tbase 0x${entry.base.toString(16)}\tlength ${entry.length}\tphys ${entry.physOffset}\textent ${entry.extent}\towner ${entry.owner || '-'}\tgrants ${grants}`);
      }
      if (verification) printVerification(verification);
    }
    if (verification) return verification.ok ? 0 : 1;
    return report.status === 'OK' ? 0 : 1;
  },
};

interface Verification {
  ok: boolean;
  problems: string[];
  copies: string[];
  regions: RegionVerdict[];
}

async function verify(file: string, report: Report): Promise<Verification> {
  const problems: string[] = [];
  // The commit record names the last acknowledged table generation (docs/FORMAT.md): recovery
  // trusts it, so a damaged one is a problem of its own.
  const commit = `commit record: ${report.commit.state}, generation ${report.commit.generation}${report.commit.problem ? ` (${report.commit.problem})` : ''}`;
  if (report.commit.state !== 'valid') problems.push(`the commit record is ${report.commit.state}${report.commit.problem ? `: ${report.commit.problem}` : ''}`);
  const copies = [commit, ...report.copies.map((copy, index) => {
    const name = `metadata copy ${'AB'[index]}`;
    if (copy.state === 'valid') return `${name}: valid, generation ${copy.generation}`;
    const other = report.copies[1 - index];
    // A new file has one table copy (generation 1); the other is written by the first update.
    if (copy.generation === 0 && other?.state === 'valid' && other.generation === 1) return `${name}: not written yet (a new file: the first table update writes it)`;
    problems.push(`${name} is ${copy.state}${copy.problem ? `: ${copy.problem}` : ''}; the next table update rewrites it, so copy the file away first if you need what it held (restore from a mirror or a backup if the other copy is not the newest)`);
    return `${name}: ${copy.state}${copy.problem ? ` (${copy.problem})` : ''}`;
  })];
  if (report.status !== 'OK') problems.push(`the unit cannot be opened: ${report.status}${report.problem ? `: ${report.problem}` : ''}`);
  if (report.recoveryNote) problems.push(`opening needs recovery: ${report.recoveryNote}`);
  const regions: RegionVerdict[] = [];
  if (report.regions && report.regions.length > 0) {
    const fd = fs.openSync(file, 'r');
    try {
      for (const entry of report.regions) {
        const verdict = await verifyRegion(new FileRegion(fd, entry.name, entry.physOffset, entry.length, entry.handle, entry.base));
        regions.push(verdict);
        for (const text of verdict.problems) problems.push(`region '${entry.name}': ${text}`);
      }
    } finally {
      fs.closeSync(fd);
    }
  }
  return { ok: problems.length === 0, problems, copies, regions };
}

function printVerification(verification: Verification): void {
  out('');
  for (const line of verification.copies) out(`verify      ${line}`);
  for (const verdict of verification.regions) {
    out(`verify      region '${verdict.region}': ${verdict.ok ? 'ok' : 'DAMAGED'}: ${verdict.summary}`);
    for (const note of verdict.notes) out(`              note: ${note}`);
    for (const text of verdict.problems) out(`              PROBLEM: ${text}`);
  }
  if (verification.ok) {
    out(`verify      OK: both metadata copies and ${verification.regions.length} region(s) check out`);
  } else {
    out(`verify      FAILED: ${verification.problems.length} problem(s):`);
    for (const text of verification.problems) out(`  - ${text}`);
    out('Recovery refuses damaged logs (ECORRUPT) rather than write over acknowledged records: restore the damaged region(s) from a mirror or a backup.');
  }
}
