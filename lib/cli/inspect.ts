/** pmu inspect: an offline dump of a PMU file's two metadata copies and its table. Never locks the file. */
import { inspectFile } from '../unit/unit';
import { out, parse, UsageError } from './args';
import { Command } from './command';

export const inspect: Command = {
  summary: 'dump a PMU file\'s metadata copies and region table (offline)',
  usage: `Usage: pmu inspect FILE [--json]

Reads FILE without locking it (works while a server has it open) and prints both metadata
copies (state, generation, problem), the unit's geometry and every region: name, handle,
virtual base, length, physical offset, owner and grants. Access keys are never printed.
Exit status 1 when no metadata copy is valid.`,
  async run(argv) {
    const { values, positionals } = parse(argv, { json: { type: 'boolean' } });
    if (positionals.length !== 1) throw new UsageError('pmu inspect needs exactly one FILE');
    const report = inspectFile(positionals[0]);
    const regions = (report.regions ?? []).map(({ key: _key, ...entry }) => entry);
    if (values.json) {
      out(JSON.stringify({ ...report, regions }, null, 2));
    } else {
      out(`file        ${report.info?.path ?? positionals[0]}`);
      out(`status      ${report.status}${report.problem ? `: ${report.problem}` : ''}`);
      report.copies.forEach((copy, index) => out(`copy ${'AB'[index]}      ${copy.state}, generation ${copy.generation}${copy.problem ? ` (${copy.problem})` : ''}`));
      if (report.recoveryNote) out(`recovery    ${report.recoveryNote}`);
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
    }
    return report.status === 'OK' ? 0 : 1;
  },
};
