/** pmu read: copies bytes of a region to stdout. */
import { parseInteger, UsageError } from '../args';
import { Command } from '../command';
import { CONNECTION_OPTIONS, connectFromArgs } from '../connect';

export const read: Command = {
  summary: 'read bytes of a region to stdout',
  operands: 'REGION',
  description: 'Writes LENGTH bytes (default: to the end of the region) from offset N (default 0) of REGION\nto stdout, raw.',
  options: {
    offset: { type: 'string', value: 'N', help: 'where in the region to start (default 0)' },
    length: { type: 'string', value: 'N', help: 'how many bytes (default: to the end of the region)' },
    ...CONNECTION_OPTIONS,
  },
  async run(parsed) {
    const [name, ...rest] = parsed.positionals;
    if (!name) throw new UsageError('missing REGION: name the region to read');
    if (rest.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(rest[0])}`);
    const offset = parsed.values.offset === undefined ? 0 : parseInteger('--offset', parsed.values.offset as string);
    const client = await connectFromArgs(parsed);
    try {
      const region = await client.openRegion(name, { rights: 'r' });
      const length = parsed.values.length === undefined ? Math.max(0, region.size - offset) : parseInteger('--length', parsed.values.length as string);
      const data = await region.read(offset, length);
      await region.close();
      await new Promise<void>((resolve, reject) => process.stdout.write(data, (error) => (error ? reject(error) : resolve())));
      return 0;
    } finally {
      await client.close();
    }
  },
};
