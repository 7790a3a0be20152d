/**
 * pmu cluster init | add | remove | create | status | scrub: the PMU set's directory in etcd from the
 * shell. lib/mirror is loaded only when a cluster command runs: the etcd client costs ~0.5 s to
 * load, which no other command should pay.
 */
import type { AgentState, RegionAgentState } from '../../mirror/agent-state';
import type { RegionConfig } from '../../mirror/config';
import type { MirrorDirectory, Progress } from '../../mirror/directory';
import type { ScrubReport } from '../../mirror/scrub';
import { OptionGroup, out, parseInteger, UsageError } from '../args';
import { parseSize } from '../sizes';
import { Command } from '../command';
import { ETCD_LOGIN_OPTIONS, etcdLoginFromArgs, refusePasswordArgument } from '../etcd-flags';
import { SET_CA_OPTION, setTlsFromArgs } from '../set-tls';

const EVERY: OptionGroup = { heading: 'Every action' };

async function directoryFromArgs(values: Record<string, unknown>): Promise<MirrorDirectory> {
  const etcd = (values.etcd as string | undefined) ?? (process.env.PMU_ETCD || undefined);
  if (!etcd) throw new UsageError('say where etcd is: --etcd http://127.0.0.1:2379 or PMU_ETCD');
  const login = etcdLoginFromArgs(values);
  const { MirrorDirectory } = await import('../../mirror/directory');
  return MirrorDirectory.connect(etcd, { set: (values.set as string | undefined) ?? (process.env.PMU_SET || undefined), ...login });
}

const MiB = 1024 * 1024;

function bytes(n: number): string {
  return n >= MiB ? `${(n / MiB).toFixed(n % MiB === 0 ? 0 : 1)} MiB` : `${n} B`;
}

/** `[██████░░░░] 60% 153.6/256 MiB` */
export function progressBar(progress: Progress, width = 20): string {
  const fraction = progress.total > 0 ? Math.min(1, progress.copied / progress.total) : 0;
  const filled = Math.round(fraction * width);
  return `[${'█'.repeat(filled)}${'░'.repeat(width - filled)}] ${Math.floor(fraction * 100)}% ${bytes(progress.copied)}/${bytes(progress.total)}`;
}

/** `failed 3 time(s) (EIO: ...); next try at 12:00:01` */
function describeFailure(failure: RegionAgentState): string {
  return `failed ${failure.attempts} time(s) (${failure.error}); next try at ${failure.nextRetryAt}`;
}

/** The line for a PMU that has not joined its set, from what its agent wrote; undefined if it has. */
export function describeJoin(state: AgentState): string | undefined {
  if (state.joined || !state.join) return undefined;
  return `pmu ${state.pmu.padEnd(12)} not joined: registering ${describeFailure(state.join)}`;
}

export function describeRegion(config: RegionConfig, progress: Map<string, Progress>, agents: Map<string, AgentState> = new Map()): string[] {
  const lines = [`region ${config.name}  ${bytes(config.size)}  epoch ${config.epoch}  read replica ${config.inSync[0]}`];
  for (const pmu of config.replicas) {
    let state: string;
    if (config.inSync.includes(pmu)) state = 'in sync';
    else if (config.syncing.includes(pmu)) {
      const p = progress.get(pmu);
      state = `resyncing ${p ? progressBar(p) : '(copy not started)'}`;
    } else {
      const failure = agents.get(pmu)?.regions[config.name];
      state = failure ? `out of sync: resync ${describeFailure(failure)}` : 'out of sync (waits for resync)';
    }
    lines.push(`  ${pmu.padEnd(12)} ${state}`);
  }
  return lines;
}

/** The lines `pmu cluster scrub` prints for one region. */
export function describeScrub(report: ScrubReport): string[] {
  const head = `region ${report.region}: ${bytes(report.bytesScrubbed)} compared on ${report.inSync.join(', ')} (epoch ${report.epoch})`;
  const lines = [report.mismatches.length === 0 ? `${head}: equal` : `${head}: ${report.mismatches.length} range(s) differ`];
  for (const m of report.mismatches) {
    const sums = Object.entries(m.checksums).map(([pmu, sum]) => `${pmu} ${sum.toString(16).padStart(8, '0')}`).join(', ');
    lines.push(`  bytes ${m.offset}..${m.offset + m.length}: ${sums}${m.majority ? `; majority ${m.majority.join(', ')}` : ''}`);
  }
  if (report.busy.length > 0) lines.push(`  ${report.busy.length} chunk(s) were being written on every look: compared again next pass`);
  for (const [pmu, error] of Object.entries(report.errors)) lines.push(`  ${pmu} did not answer: ${error}`);
  if (report.validation) lines.push(`  checkpoint log: ${report.validation}`);
  if (report.repaired.length > 0) lines.push(`  repaired: ${report.repaired.join(', ')} left the in-sync set and were resynced from ${report.validation ? 'a copy that passes its checks' : 'the majority'} (${report.repairBytes} bytes rewritten)`);
  if (report.note) lines.push(`  ${report.note}`);
  return lines;
}

export const cluster: Command = {
  summary: 'mirrored PMUs: the PMU set in etcd (init, add, remove, create, status, scrub)',
  forms: [
    'init [--copies N]',
    'add ID --url URL --capacity BYTES',
    'remove ID',
    'create NAME --size BYTES [--copies N]',
    'create NAME --adopt PMU [--copies N]',
    'status [--json]',
    'scrub [--region R] [--rate BYTES] [--no-repair] [--json]',
  ],
  description: `init     make the set (copies of each new region: 1-3, default 2)
add      add a PMU, which must serve under that id (pmu help serve; --join does this itself)
remove   take a PMU out of the set (its copies get a new home)
create   make a mirrored region on the PMUs with most room; with --adopt, record a region that
         PMU already holds (etcd lost the set's state): its copy is the in-sync one, the other
         replicas resync from it
status   PMUs, regions, replicas, in sync, resync progress, epoch
scrub    compare the in-sync replicas by checksum (one pass); a checkpoint log's copies that fail
         their checks are repaired (even with 2); otherwise with 3+ a majority repairs the
         others; exit 1 if a difference is left unrepaired
create and scrub need the set's user, an admin on every PMU: --user/--secret or PMU_USER/PMU_SECRET.
An etcd with authentication or TLS: the etcd user needs readwrite on the set's key prefix
/pmu/sets/NAME/ only (docs/MIRROR.md, "etcd with authentication and TLS").`,
  options: {
    copies: { type: 'string', value: 'N', help: 'init, create: copies of each region (1-3)' },
    url: { type: 'string', value: 'URL', help: "add: the PMU's address, tcp://HOST:PORT" },
    capacity: { type: 'string', value: 'BYTES', help: 'add: bytes of regions it may hold (its unit size), e.g. 1GiB' },
    size: { type: 'string', value: 'BYTES', help: 'create: the region size, e.g. 64MiB or 64MB (decimal)' },
    adopt: { type: 'string', value: 'PMU', help: 'create: record the region this PMU already holds' },
    json: { type: 'boolean', help: 'status, scrub: as JSON' },
    region: { type: 'string', value: 'R', help: 'scrub: only region R' },
    rate: { type: 'string', value: 'BYTES', help: 'scrub: bytes per second per replica, e.g. 64MiB' },
    'no-repair': { type: 'boolean', help: 'scrub: report differences, repair nothing' },
    user: { type: 'string', value: 'NAME', help: "create, scrub: the set's user (else PMU_USER)" },
    secret: { type: 'string', value: 'SECRET', help: "create, scrub: its secret (else PMU_SECRET)" },
    etcd: { type: 'string', value: 'URL', group: EVERY, help: "where the set's directory is (else PMU_ETCD)" },
    set: { type: 'string', value: 'NAME', group: EVERY, help: "the set's name (else PMU_SET; default 'default')" },
    'set-ca': { ...SET_CA_OPTION, group: EVERY },
    ...ETCD_LOGIN_OPTIONS,
  },
  checkArgv: refusePasswordArgument,
  async run(parsed) {
    const [action, name, ...rest] = parsed.positionals;
    const values = parsed.values;
    if (!action) throw new UsageError('say what to do: init, add, remove, create, status or scrub');
    if (!['init', 'add', 'remove', 'create', 'status', 'scrub'].includes(action)) throw new UsageError(`unknown action ${JSON.stringify(action)}; use init, add, remove, create, status or scrub`);
    if (['add', 'remove', 'create'].includes(action) && !name) throw new UsageError(`missing ${action === 'create' ? 'NAME: say which region to create' : `ID: say which PMU to ${action}`}`);
    if (rest.length > 0 || (['init', 'status', 'scrub'].includes(action) && name)) throw new UsageError(`unexpected argument ${JSON.stringify(rest[0] ?? name)}`);
    const copies = values.copies === undefined ? undefined : parseInteger('--copies', values.copies as string, 1, 3);
    const directory = await directoryFromArgs(values);
    try {
      switch (action) {
        case 'init': {
          const info = await directory.init(copies ?? 2);
          out(`made the PMU set ${directory.prefix} in ${directory.etcdUrl} (${info.copies} copies per region)`);
          return 0;
        }
        case 'add': {
          if (!values.url) throw new UsageError('add needs --url tcp://HOST:PORT');
          const capacity = parseSize('--capacity', values.capacity as string | undefined);
          await directory.addPmu({ id: name, url: values.url as string, capacity });
          out(`added PMU '${name}' at ${values.url} (${bytes(capacity)})`);
          return 0;
        }
        case 'remove': {
          const replacements = await directory.removePmu(name);
          out(`removed PMU '${name}' from the set`);
          for (const [region, pmu] of replacements) out(`region '${region}': new replica on '${pmu}' (its agent resyncs it)`);
          return 0;
        }
        case 'create': {
          const adopt = values.adopt as string | undefined;
          const size = adopt && values.size === undefined ? undefined : parseSize('--size', values.size as string | undefined);
          const { PmuPool } = await import('../../mirror/pool');
          const { createMirroredRegion } = await import('../../mirror/resync');
          const pool = new PmuPool(directory, { user: (values.user as string | undefined) ?? process.env.PMU_USER, secret: (values.secret as string | undefined) ?? process.env.PMU_SECRET, timeoutMs: 10_000, tls: setTlsFromArgs(values) });
          try {
            if (adopt) {
              const { adoptRegion } = await import('../../mirror/adopt');
              const config = await adoptRegion(directory, pool, name, adopt, { size, copies });
              const others = config.replicas.filter((pmu) => pmu !== adopt);
              out(`adopted region '${name}' (${bytes(config.size)}) on ${adopt} as its in-sync copy${others.length ? `; ${others.join(', ')} resync from it (their agents do it)` : ''}`);
              return 0;
            }
            const config = await createMirroredRegion(directory, pool, name, size!, copies);
            out(`created mirrored region '${name}' (${bytes(size!)}) on ${config.replicas.join(', ')}`);
          } finally {
            await pool.close();
          }
          return 0;
        }
        case 'scrub': {
          const rate = values.rate === undefined ? undefined : parseSize('--rate', values.rate as string);
          const { PmuPool } = await import('../../mirror/pool');
          const { scrubSet } = await import('../../mirror/scrub');
          const pool = new PmuPool(directory, { user: (values.user as string | undefined) ?? process.env.PMU_USER, secret: (values.secret as string | undefined) ?? process.env.PMU_SECRET, timeoutMs: 10_000, tls: setTlsFromArgs(values) });
          try {
            const reports = await scrubSet(directory, pool, { region: values.region as string | undefined, bytesPerSecond: rate, repair: !values['no-repair'] });
            if (values.json) out(JSON.stringify(reports, null, 2));
            else for (const report of reports) for (const line of describeScrub(report)) out(line);
            return reports.some((report) => report.mismatches.length > 0 && report.repaired.length === 0) ? 1 : 0;
          } finally {
            await pool.close();
          }
        }
        default: {
          const agents = await directory.agentStates();
          const waiting = [...agents.values()].map(describeJoin).filter((line): line is string => line !== undefined);
          const info = await directory.setInfo().catch((error: unknown) => {
            // PMUs already trying to join a set nobody made: say so with the refusal.
            if (waiting.length > 0 && (error as { code?: string }).code === 'ENOENT') (error as Error).message += `\n${waiting.join('\n')}`;
            throw error;
          });
          const pmus = await directory.pmus();
          const regions = await directory.regions();
          const progress = new Map(await Promise.all(regions.map(async (config) => [config.name, await directory.progress(config.name)] as const)));
          if (values.json) {
            out(JSON.stringify({ set: directory.prefix, etcd: directory.etcdUrl, copies: info.copies, pmus, agents: Object.fromEntries(agents), regions: regions.map((config) => ({ ...config, progress: Object.fromEntries(progress.get(config.name) ?? []) })) }, null, 2));
            return 0;
          }
          out(`set ${directory.prefix} in ${directory.etcdUrl}: ${pmus.length} PMU(s), ${regions.length} region(s), ${info.copies} copies per new region`);
          for (const pmu of pmus) out(`pmu ${pmu.id.padEnd(12)} ${pmu.url}  ${bytes(pmu.capacity)}`);
          for (const line of waiting) out(line);
          for (const config of regions) for (const line of describeRegion(config, progress.get(config.name) ?? new Map(), agents)) out(line);
          return 0;
        }
      }
    } finally {
      directory.close();
    }
  },
};
