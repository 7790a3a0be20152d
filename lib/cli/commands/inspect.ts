/**
 * pmu inspect: an offline dump of a PMU file's two metadata copies and its table; with
 * --verify, a check of everything recovery trusts; with --verify and several files (the
 * replicas of a mirrored set), a comparison of their copies of each region
 * (lib/checkpoint/copies.ts), which tells damage on one replica from a torn tail on all of them.
 * Never locks a file and never writes.
 */
import * as fs from 'node:fs';
import { compareCopies, CopiesDecision } from '../../checkpoint/copies';
import { verifyRegion, RegionVerdict } from '../../checkpoint/verify';
import { isPmuError } from '../../unit/errors';
import { crc32c } from '../../unit/native';
import { inspectFile } from '../../unit/unit';
import { printable } from '../../unit/validate';
import { out, UsageError } from '../args';
import { Command } from '../command';
import { FileRegion } from '../file-region';

type Report = ReturnType<typeof inspectFile>;

export const inspect: Command = {
  summary: 'dump a PMU file\'s metadata copies and region table (offline); --verify checks it',
  forms: ['FILE [--verify] [--json]', '--verify FILE --set FILE2 [--set FILE3] [--region R] [--json]'],
  description: `Reads FILE without locking it (works while a server has it open) and prints both metadata
copies (state, generation, problem), the recovery note (what open had to do), the unit's
geometry and every region: name, handle, virtual base, length, physical offset, owner and
grants. Access keys are never printed. Exit status 1 when no metadata copy is valid.

--verify also checks, read-only: both metadata copies; in every region holding a checkpoint
log, its header, its checked words (epoch, cursor) and the CRC of every live record (append
mode: from the cursor on; the rest of the ring is stale and reported as such), and whether
anything acknowledged follows a damaged record; overwrite mode: both slots. Regions that are
not checkpoint logs are reported as raw. Exit status 0 when all is well, 1 with a report of
each problem otherwise.

--verify with several files (--set FILE, repeated, or more FILEs: the replicas' unit files of
a mirrored set) compares their copies of region R (--region), or of every region any of them
holds, and gives each copy a role: source (the longest valid log: the copy to keep), behind
(valid and shorter: a writer died mid-append), damaged (fails its checks, or a record torn
there is valid on the source: damage on that copy, not a torn tail) or unreadable. A torn tail
on every copy is what a crash during an append leaves, and is said so. Regions that are not
checkpoint logs are compared by checksum and reported, not judged. Exit status 0 when every
copy and every file's metadata checks out, 1 when a copy is damaged or unreadable or no copy
is valid; the report says which file to resync from which.`,
  options: {
    verify: { type: 'boolean', help: 'check everything recovery trusts (read-only); with several files, compare copies' },
    set: { type: 'string', value: 'FILE', multiple: true, help: "with --verify: another replica's unit file to compare; repeat for more" },
    region: { type: 'string', value: 'R', help: 'with --verify and several files: compare the copies of R only' },
    json: { type: 'boolean', help: 'the report as JSON' },
  },
  async run({ values, positionals }) {
    const files = [...positionals, ...((values.set as string[] | undefined) ?? [])];
    if (files.length === 0) throw new UsageError('missing FILE: name the unit file to inspect');
    if (files.length > 1 || values.region !== undefined) {
      if (!values.verify) throw new UsageError('several files (or --region) compare copies: add --verify');
      if (files.length < 2) throw new UsageError('--region compares the copies of a region: name the other copies\' files with --set FILE');
      if (new Set(files).size !== files.length) throw new UsageError('a file is named twice: each copy once');
      const result = await verifySet(files, values.region as string | undefined);
      if (values.json) out(JSON.stringify(result, null, 2));
      else printSet(result);
      return result.ok ? 0 : 1;
    }
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
        out(`region      ${printable(entry.name)}\thandle ${entry.handle}\tbase 0x${entry.base.toString(16)}\tlength ${entry.length}\tphys ${entry.physOffset}\textent ${entry.extent}\towner ${printable(entry.owner || '-')}\tgrants ${grants}`);
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

/** The commit record's and both metadata copies' state, and what is wrong with them. */
function checkMetadata(report: Report): { problems: string[]; copies: string[] } {
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
  return { problems, copies };
}

async function verify(file: string, report: Report): Promise<Verification> {
  const { problems, copies } = checkMetadata(report);
  const regions: RegionVerdict[] = [];
  if (report.regions && report.regions.length > 0) {
    const fd = fs.openSync(file, 'r');
    try {
      for (const entry of report.regions) {
        const verdict = await verifyRegion(new FileRegion(fd, entry.name, entry.physOffset, entry.length, entry.handle, entry.base));
        regions.push(verdict);
        for (const text of verdict.problems) problems.push(`region '${printable(entry.name)}': ${text}`);
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
    out(`verify      region '${printable(verdict.region)}': ${verdict.ok ? 'ok' : 'DAMAGED'}: ${verdict.summary}`);
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

interface SetFile {
  file: string;
  /** False when the file cannot be inspected at all, or its metadata fails its checks. */
  ok: boolean;
  metadata: string[];
  problems: string[];
}

interface SetCopy {
  file: string;
  role: 'source' | 'behind' | 'damaged' | 'unreadable' | 'raw' | 'missing';
  detail: string;
  /** Raw regions: the copy's CRC32C, to say whether the copies hold the same bytes. */
  crc32c?: number;
  verdict?: RegionVerdict;
}

interface SetRegion {
  region: string;
  kind: CopiesDecision['kind'];
  ok: boolean;
  /** The file holding the copy to keep, when one passes its checks. */
  source?: string;
  copies: SetCopy[];
  notes: string[];
  problems: string[];
}

interface SetVerification {
  ok: boolean;
  files: SetFile[];
  regions: SetRegion[];
  problems: string[];
}

/** How to heal a damaged copy: from the good one, never the other way round. */
function resyncAdvice(region: string, file: string, source: string): string {
  return (
    `resync the copy in '${file}' from the one in '${source}': where these are the replicas of a mirrored set, ` +
    `'pmu cluster scrub --region ${region}' takes the damaged replica out of the in-sync set and its agent (pmu serve --join) resyncs it from a copy that passes; ` +
    `keep '${source}' as it is (it is the copy that passes), and copy '${file}' away first if you want to study the damage`
  );
}

/**
 * Compares the copies of each region across `files` (each a replica's unit file): every file's
 * metadata is checked as --verify checks one file, then compareCopies decides between the
 * copies of each region. Read-only: each file is opened O_RDONLY and read with pread.
 */
async function verifySet(files: string[], only?: string): Promise<SetVerification> {
  const opened = files.map((file) => {
    try {
      const report = inspectFile(file);
      const { problems, copies } = checkMetadata(report);
      const fd = fs.openSync(file, 'r');
      return { file, report, fd, meta: { file, ok: problems.length === 0, metadata: copies, problems } as SetFile };
    } catch (error) {
      if (!isPmuError(error) && !(error instanceof Error && 'code' in error)) throw error;
      const text = isPmuError(error) ? `${error.code}: ${error.message}` : (error as Error).message;
      return { file, report: undefined, fd: undefined, error: text, meta: { file, ok: false, metadata: [], problems: [`cannot be read: ${text}`] } as SetFile };
    }
  });
  try {
    const problems: string[] = [];
    for (const each of opened) for (const text of each.meta.problems) problems.push(`${each.file}: ${text}`);
    const names: string[] = only !== undefined ? [only] : [];
    if (only === undefined) for (const each of opened) for (const entry of each.report?.regions ?? []) if (!names.includes(entry.name)) names.push(entry.name);
    const regions: SetRegion[] = [];
    for (const name of names) {
      const result: SetRegion = { region: name, kind: 'raw', ok: true, copies: [], notes: [], problems: [] };
      const held = opened.flatMap((each) => {
        const entry = each.report?.regions?.find((e) => e.name === name);
        return entry && each.fd !== undefined ? [{ file: each.file, region: new FileRegion(each.fd, name, entry.physOffset, entry.length, entry.handle, entry.base) }] : [];
      });
      // A file that cannot be opened as a unit and shows no table holds no region one can check.
      const broken = (each: (typeof opened)[number]) => each.fd === undefined || (each.report?.status !== 'OK' && !each.report?.regions?.length);
      const unreadable = opened.filter((each) => broken(each) && !held.some((h) => h.file === each.file));
      const missing = opened.filter((each) => !broken(each) && !held.some((h) => h.file === each.file));
      const problem = (text: string) => {
        result.ok = false;
        result.problems.push(text);
      };
      for (const each of unreadable) {
        const why = each.error ?? `the unit cannot be opened: ${each.report?.status}${each.report?.problem ? `: ${each.report.problem}` : ''}`;
        result.copies.push({ file: each.file, role: 'unreadable', detail: why });
        problem(`${each.file}: its copy cannot be checked (${why})`);
      }
      for (const each of missing) {
        result.copies.push({ file: each.file, role: 'missing', detail: 'not in this file\'s region table' });
        // Asked for by name: every file named should hold it. Otherwise a set with fewer copies
        // than PMUs places each region on some of them only.
        if (only !== undefined) problem(`${each.file}: holds no region '${name}'`);
        else result.notes.push(`not in ${each.file} (a region is placed on some of a set's PMUs only)`);
      }
      if (held.length === 0) {
        if (only !== undefined) problem(`no file holds region '${name}'`);
        regions.push(result);
        continue;
      }
      const decision = await compareCopies(held.map((h) => ({ name: h.file, region: h.region })));
      result.kind = decision.kind;
      const copies = decision.copies.map((copy): SetCopy => ({ file: copy.name, role: copy.role, detail: copy.detail, ...(copy.verdict ? { verdict: copy.verdict } : {}) }));
      result.copies.unshift(...copies);
      if (decision.kind === 'raw') {
        for (const copy of decision.copies) if (copy.role === 'unreadable') problem(`the copy in ${copy.name} cannot be read: ${copy.detail}`);
        await compareRaw(held.filter((h) => decision.copies.some((copy) => copy.name === h.file && copy.role === 'raw')), result);
      } else judgeLog(name, decision, result, problem);
      regions.push(result);
    }
    for (const region of regions) for (const text of region.problems) problems.push(`region '${printable(region.region)}': ${text}`);
    return { ok: problems.length === 0, files: opened.map((each) => each.meta), regions, problems };
  } finally {
    for (const each of opened) if (each.fd !== undefined) fs.closeSync(each.fd);
  }
}

/** A checkpoint log's copies: what compareCopies decided, as problems (damage) and notes (torn tail, behind). */
function judgeLog(name: string, decision: CopiesDecision, result: SetRegion, problem: (text: string) => void): void {
  if (decision.source === undefined) {
    const each = decision.copies.map((copy) => `${copy.name}: ${copy.detail}`).join('; ');
    problem(`no copy of its checkpoint log passes its checks (${each}); restore the region from a backup (do not delete any of these files: each may hold what a restore needs)`);
    return;
  }
  const source = decision.copies[decision.source];
  result.source = source.name;
  for (const copy of decision.copies) {
    if (copy.role === 'damaged' || copy.role === 'unreadable') problem(`the copy in ${copy.name} is ${copy.role}: ${copy.detail}; ${resyncAdvice(name, copy.name, source.name)}`);
    else if (copy.role === 'behind' && copy.detail !== 'equal to the source') result.notes.push(`${copy.name} ${copy.detail}: not damage; the next takeover makes every in-sync copy agree with ${source.name}`);
  }
  const valid = decision.copies.filter((copy) => copy.role === 'source' || copy.role === 'behind');
  const torn = valid.map((copy) => copy.verdict?.tornAt);
  if (valid.length === decision.copies.length && torn.every((at) => at !== undefined && at === torn[0])) {
    result.notes.push(`every copy ends in a torn tail at record ${torn[0]}: what a crash during an append leaves on all the replicas (the record was never acknowledged); recovery drops it, nothing to repair`);
  }
}

/** Raw copies cannot be validated: say whether they hold the same bytes, decide nothing. */
async function compareRaw(held: Array<{ file: string; region: FileRegion }>, result: SetRegion): Promise<void> {
  const chunk = 4 << 20;
  for (const h of held) {
    let sum = 0;
    for (let at = 0; at < h.region.size; at += chunk) sum = crc32c(await h.region.read(at, Math.min(chunk, h.region.size - at)), sum);
    const copy = result.copies.find((c) => c.file === h.file);
    if (copy) copy.crc32c = sum;
  }
  if (held.length < 2) return;
  const sums = new Set(held.map((h) => result.copies.find((c) => c.file === h.file)?.crc32c));
  result.notes.push(
    sums.size === 1
      ? `not a checkpoint log: the ${held.length} copies hold the same bytes`
      : `not a checkpoint log, and the copies' bytes differ (${sums.size} versions): nothing here can tell which is right (writes in flight on a live set differ too); 'pmu cluster scrub' compares them on the live set`,
  );
}

function printSet(result: SetVerification): void {
  for (const file of result.files) {
    out(`file        ${file.file}: ${file.ok ? 'metadata ok' : file.metadata.length === 0 ? 'UNREADABLE' : 'METADATA PROBLEM'}`);
    for (const line of file.metadata) out(`              ${line}`);
    for (const text of file.problems) out(`              PROBLEM: ${text}`);
  }
  for (const region of result.regions) {
    const kind = region.kind === 'raw' ? 'raw' : 'checkpoint log';
    out(`region      '${printable(region.region)}' (${kind}): ${region.ok ? 'ok' : 'DAMAGED'}${region.source ? `, source ${region.source}` : ''}`);
    for (const copy of region.copies) out(`  ${copy.role.padEnd(10)} ${copy.file}: ${copy.detail}`);
    for (const note of region.notes) out(`              note: ${note}`);
    for (const text of region.problems) out(`              PROBLEM: ${text}`);
  }
  if (result.ok) {
    out(`verify      OK: ${result.files.length} files, ${result.regions.length} region(s): the copies agree`);
  } else {
    out(`verify      FAILED: ${result.problems.length} problem(s):`);
    for (const text of result.problems) out(`  - ${text}`);
  }
}
