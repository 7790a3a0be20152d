/**
 * pmu cluster init | add | remove | create | status: the PMU set's directory in etcd from the
 * shell. lib/mirror is loaded only when a cluster command runs: the etcd client costs ~0.5 s to
 * load, which no other command should pay.
 */
import type { RegionConfig } from '../../mirror/config';
import type { MirrorDirectory, Progress } from '../../mirror/directory';
import { out, parse, parseInteger, parseSize, UsageError } from '../args';
import { Command } from '../command';

const CLUSTER_OPTIONS = {
  etcd: { type: 'string' },
  set: { type: 'string' },
} as const;

async function directoryFromArgs(values: Record<string, unknown>): Promise<MirrorDirectory> {
  const etcd = (values.etcd as string | undefined) ?? (process.env.PMU_ETCD || undefined);
  if (!etcd) throw new UsageError('say where etcd is: --etcd http://127.0.0.1:2379 or PMU_ETCD');
  const { MirrorDirectory } = await import('../../mirror/directory');
  return MirrorDirectory.connect(etcd, { set: (values.set as string | undefined) ?? (process.env.PMU_SET || undefined) });
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

export function describeRegion(config: RegionConfig, progress: Map<string, Progress>): string[] {
  const lines = [`region ${config.name}  ${bytes(config.size)}  epoch ${config.epoch}  read replica ${config.inSync[0]}`];
  for (const pmu of config.replicas) {
    let state: string;
    if (config.inSync.includes(pmu)) state = 'in sync';
    else if (config.syncing.includes(pmu)) {
      const p = progress.get(pmu);
      state = `resyncing ${p ? progressBar(p) : '(copy not started)'}`;
    } else state = 'out of sync (waits for resync)';
    lines.push(`  ${pmu.padEnd(12)} ${state}`);
  }
  return lines;
}

export const cluster: Command = {
  summary: 'mirrored PMUs: the PMU set in etcd (init, add, remove, create, status)',
  usage: `Usage:
  pmu cluster init [--copies 2]                       make the set (copies of each new region: 1-3)
  pmu cluster add ID --url URL --capacity BYTES        add a PMU (pmu serve --join does this itself)
  pmu cluster remove ID                                take a PMU out of the set (its copies get a new home)
  pmu cluster create NAME --size BYTES [--copies N]    make a mirrored region on the PMUs with most room
  pmu cluster status [--json]                          PMUs, regions, replicas, in sync, resync progress, epoch

Every command takes --etcd URL (or PMU_ETCD) and --set NAME (or PMU_SET; default 'default').
create needs the set's user, an admin on every PMU: --user/--secret or PMU_USER/PMU_SECRET.`,
  async run(argv) {
    const parsed = parse(argv, {
      ...CLUSTER_OPTIONS,
      copies: { type: 'string' },
      url: { type: 'string' },
      capacity: { type: 'string' },
      size: { type: 'string' },
      user: { type: 'string' },
      secret: { type: 'string' },
      json: { type: 'boolean' },
    });
    const [action, name, ...rest] = parsed.positionals;
    const values = parsed.values;
    if (!action) throw new UsageError('say what to do: init, add, remove, create or status');
    if (!['init', 'add', 'remove', 'create', 'status'].includes(action)) throw new UsageError(`unknown action ${JSON.stringify(action)}; use init, add, remove, create or status`);
    if (['add', 'remove', 'create'].includes(action) && !name) throw new UsageError(`pmu cluster ${action} needs ${action === 'create' ? 'a region NAME' : 'a PMU ID'}`);
    if (rest.length > 0 || (['init', 'status'].includes(action) && name)) throw new UsageError(`unexpected argument ${JSON.stringify(rest[0] ?? name)}`);
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
          if (!values.url) throw new UsageError('pmu cluster add needs --url tcp://HOST:PORT');
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
          const size = parseSize('--size', values.size as string | undefined);
          const { PmuPool } = await import('../../mirror/pool');
          const { createMirroredRegion } = await import('../../mirror/resync');
          const pool = new PmuPool(directory, { user: (values.user as string | undefined) ?? process.env.PMU_USER, secret: (values.secret as string | undefined) ?? process.env.PMU_SECRET, timeoutMs: 10_000 });
          try {
            const config = await createMirroredRegion(directory, pool, name, size, copies);
            out(`created mirrored region '${name}' (${bytes(size)}) on ${config.replicas.join(', ')}`);
          } finally {
            await pool.close();
          }
          return 0;
        }
        default: {
          const info = await directory.setInfo();
          const pmus = await directory.pmus();
          const regions = await directory.regions();
          const progress = new Map(await Promise.all(regions.map(async (config) => [config.name, await directory.progress(config.name)] as const)));
          if (values.json) {
            out(JSON.stringify({ set: directory.prefix, etcd: directory.etcdUrl, copies: info.copies, pmus, regions: regions.map((config) => ({ ...config, progress: Object.fromEntries(progress.get(config.name) ?? []) })) }, null, 2));
            return 0;
          }
          out(`set ${directory.prefix} in ${directory.etcdUrl}: ${pmus.length} PMU(s), ${regions.length} region(s), ${info.copies} copies per new region`);
          for (const pmu of pmus) out(`pmu ${pmu.id.padEnd(12)} ${pmu.url}  ${bytes(pmu.capacity)}`);
          for (const config of regions) for (const line of describeRegion(config, progress.get(config.name) ?? new Map())) out(line);
          return 0;
        }
      }
    } finally {
      directory.close();
    }
  },
};
