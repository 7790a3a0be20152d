/** pmu write: copies stdin (or --file) into a region at an offset. */
import * as fs from 'node:fs';
import { Durability } from '../../unit/region';
import { parseInteger, UsageError } from '../args';
import { Command } from '../command';
import { CONNECTION_OPTIONS, connectFromArgs } from '../connect';

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export const write: Command = {
  summary: 'write stdin or a file into a region',
  operands: 'REGION',
  description: 'Writes the bytes of F (stdin if no --file) at offset N (default 0) of REGION.',
  options: {
    offset: { type: 'string', value: 'N', help: 'where in the region to write (default 0)' },
    file: { type: 'string', value: 'F', help: 'write the bytes of F (default: stdin)' },
    durability: { type: 'string', value: 'flushed|mapped', help: "flushed (default): acknowledged after msync; mapped: once in the server's mapping" },
    ...CONNECTION_OPTIONS,
  },
  async run(parsed) {
    const [name, ...rest] = parsed.positionals;
    if (!name) throw new UsageError('missing REGION: name the region to write to');
    if (rest.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(rest[0])}`);
    const offset = parsed.values.offset === undefined ? 0 : parseInteger('--offset', parsed.values.offset as string);
    const durability = (parsed.values.durability as string | undefined) ?? 'flushed';
    if (durability !== 'flushed' && durability !== 'mapped') throw new UsageError(`--durability must be flushed or mapped, got ${JSON.stringify(durability)}`);
    const file = parsed.values.file as string | undefined;
    const data = file ? fs.readFileSync(file) : await readStdin();
    const client = await connectFromArgs(parsed);
    try {
      const region = await client.openRegion(name, { rights: 'rw' });
      await region.write(offset, data, { durability: durability as Durability });
      await region.close();
      process.stderr.write(`wrote ${data.length} bytes to '${name}' at offset ${offset} (${durability})\n`);
      return 0;
    } finally {
      await client.close();
    }
  },
};

