/** pmu region create | list | delete | grant: the persistent memory manager from the shell. */
import { Grant } from '../../unit/unit';
import { PmuError } from '../../unit/errors';
import { printable } from '../../unit/validate';
import { out, UsageError } from '../args';
import { parseSize } from '../sizes';
import { Command } from '../command';
import { CONNECTION_OPTIONS, connectFromArgs } from '../connect';

function parseGrant(text: string): Grant {
  const match = /^([^=]+)=(r|rw)$/.exec(text);
  if (!match) throw new UsageError(`grant must look like USER=r or USER=rw, got ${JSON.stringify(text)}`);
  return { user: match[1], rights: match[2] as 'r' | 'rw' };
}

export const region: Command = {
  summary: 'create, list, delete regions and grant access to them',
  forms: [
    'create NAME --size BYTES [--owner USER] [--grant USER=r|rw ...] [connection options]',
    'list [--json] [connection options]',
    'delete NAME [connection options]',
    'grant NAME USER=r|rw ... [--revoke USER ...] [connection options]',
  ],
  description: 'create, delete and grant need an admin user; list shows the regions you may access.',
  options: {
    size: { type: 'string', value: 'BYTES', help: 'create: the size, e.g. 65536, 64KiB, 1MiB or 1MB (decimal)' },
    owner: { type: 'string', value: 'USER', help: 'create: the owner (default: you)' },
    grant: { type: 'string', value: 'USER=r|rw', multiple: true, help: 'create: let USER read (r) or read and write (rw); repeat for more' },
    revoke: { type: 'string', value: 'USER', multiple: true, help: "grant: take USER's rights away; repeat for more" },
    json: { type: 'boolean', help: 'list: as JSON' },
    ...CONNECTION_OPTIONS,
  },
  async run(parsed) {
    const [action, name, ...rest] = parsed.positionals;
    if (!action) throw new UsageError('say what to do: create, list, delete or grant');
    if (!['create', 'list', 'delete', 'grant'].includes(action)) throw new UsageError(`unknown action ${JSON.stringify(action)}; use create, list, delete or grant`);
    if (action !== 'list' && !name) throw new UsageError(`missing NAME: say which region to ${action}`);
    if (action !== 'grant' && rest.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(rest[0])}`);
    const values = parsed.values;
    const grants = ((values.grant as string[] | undefined) ?? []).map(parseGrant);
    const size = action === 'create' ? parseSize('--size', values.size as string | undefined) : 0;
    const client = await connectFromArgs(parsed);
    try {
      switch (action) {
        case 'create': {
          const created = await client.createRegion(name, size, { owner: values.owner as string | undefined, grants: grants.length > 0 ? grants : undefined });
          const { handle, base, size: bytes } = created.context;
          out(`created region '${name}': ${bytes} bytes, handle ${handle}, base 0x${base.toString(16)}`);
          await created.close();
          return 0;
        }
        case 'list': {
          const regions = await client.listRegions();
          if (values.json) out(JSON.stringify(regions, null, 2));
          else if (regions.length === 0) out('no regions');
          else {
            for (const info of regions) {
              const granted = info.grants.map((g) => `${g.user}=${g.rights}`).join(',') || '-';
              out(`${printable(info.name)}\t${info.size} bytes\thandle ${info.handle}\tbase 0x${info.base.toString(16)}\towner ${printable(info.owner || '-')}\tgrants ${granted}\tyou ${info.rights}`);
            }
          }
          return 0;
        }
        case 'delete':
          await client.deleteRegion(name);
          out(`deleted region '${name}'`);
          return 0;
        default: {
          const changes = [...grants, ...rest.map(parseGrant)];
          const revoked = new Set((values.revoke as string[] | undefined) ?? []);
          if (changes.length === 0 && revoked.size === 0) throw new UsageError('grant needs USER=r|rw or --revoke USER');
          const current = (await client.listRegions()).find((info) => info.name === name);
          if (!current) throw new PmuError('ENOENT', `no region named '${name}' that you can see`);
          const merged = new Map(current.grants.map((g) => [g.user, g.rights]));
          for (const change of changes) merged.set(change.user, change.rights);
          for (const user of revoked) merged.delete(user);
          const updated = await client.setGrants(name, [...merged].map(([user, rights]) => ({ user, rights })));
          out(`region '${name}' grants: ${updated.grants.map((g) => `${g.user}=${g.rights}`).join(', ') || 'none'}`);
          return 0;
        }
      }
    } finally {
      await client.close();
    }
  },
};
