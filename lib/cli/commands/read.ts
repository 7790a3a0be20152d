/** pmu read: copies bytes of a region to stdout. */
import { parse, parseInteger, UsageError } from '../args';
import { Command } from '../command';
import { CONNECTION_HELP, CONNECTION_OPTIONS, connectFromArgs } from '../connect';

export const read: Command = {
  summary: 'read bytes of a region to stdout',
  usage: `Usage: pmu read REGION [--offset N] [--length N]

Writes LENGTH bytes (default: to the end of the region) from offset N (default 0) of REGION
to stdout, raw.

${CONNECTION_HELP}`,
  async run(argv) {
    const parsed = parse(argv, { ...CONNECTION_OPTIONS, offset: { type: 'string' }, length: { type: 'string' } });
    const [name, ...rest] = parsed.positionals;
    if (!name) throw new UsageError('pmu read needs a REGION name');
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
