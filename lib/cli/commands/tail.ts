/**
 * pmu tail: prints the records of an append-mode checkpoint log and follows it. A tail is an
 * observer: it opens the region read-only and never clears, so it does not disturb the backup
 * that owns the cursor. It starts at the persisted cursor (the oldest record not yet cleared).
 */
import { CheckpointReader } from '../../checkpoint/reader';
import { LogRecord } from '../../checkpoint/format/log-scan';
import { MAGIC } from '../../checkpoint/format/layout';
import { PmuError } from '../../unit/errors';
import { Region } from '../../unit/region';
import { PersistentMemoryUnit } from '../../unit/unit';
import { Parsed, parseInteger, UsageError, out } from '../args';
import { Command } from '../command';
import { CONNECTION_OPTIONS, connectFromArgs } from '../connect';

const FORMATS = ['text', 'json', 'hex'] as const;
type Format = (typeof FORMATS)[number];

export const tail: Command = {
  summary: 'print and follow the records of an append-mode checkpoint log',
  operands: 'REGION',
  description: `Prints each record of the checkpoint log in REGION from the reader's cursor on, one per line
(sequence, type, epoch, bytes, payload), then keeps following it until interrupted.
A damaged record ends what can be trusted: tail reports where and why on stderr.`,
  options: {
    once: { type: 'boolean', help: 'print what is there now and exit' },
    interval: { type: 'string', value: 'MS', help: 'poll period while caught up (default 100)' },
    format: { type: 'string', value: 'text|json|hex', help: 'payload as text (default: UTF-8 if printable, else hex), json, or hex' },
    file: { type: 'string', value: 'PMU_FILE', help: "read an embedded unit's file directly (only while no process has it open)" },
    ...CONNECTION_OPTIONS,
  },
  run: tailCommand,
};

async function tailCommand(parsed: Parsed): Promise<number> {
  const [name, ...rest] = parsed.positionals;
  if (!name) throw new UsageError('missing REGION: name the region whose checkpoint log to print');
  if (rest.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(rest[0])}`);
  const intervalMs = parsed.values.interval === undefined ? 100 : parseInteger('--interval', parsed.values.interval as string, 1);
  const format = (parsed.values.format ?? 'text') as Format;
  if (!FORMATS.includes(format)) throw new UsageError(`--format must be text, json or hex, got ${JSON.stringify(parsed.values.format)}`);
  const file = parsed.values.file as string | undefined;

  // Everything opened from here on is closed in the finally below, failures included: a client
  // left open would keep the process alive (a tail --once that never exits).
  let close = async () => {};
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    let region: Region;
    if (file) {
      const unit = PersistentMemoryUnit.open(file, { onWarning: (warning) => process.stderr.write(`pmu tail: warning: ${warning.message}\n`) });
      close = () => unit.close();
      region = unit.openRegion(name);
    } else {
      const client = await connectFromArgs(parsed);
      close = () => client.close();
      region = await client.openRegion(name, { rights: 'r' });
    }
    const reader = await openLog(region);
    let reportedStop = '';
    const reportTorn = () => {
      const last = reader.lastStop;
      if (last?.reason !== 'torn' || last.detail === reportedStop) return;
      reportedStop = last.detail;
      process.stderr.write(`pmu tail: the log cannot be trusted past position ${last.position} (sequence ${last.sequence}): ${last.detail}\n`);
    };
    if (parsed.values.once) {
      for (;;) {
        const batch = await reader.readBatch();
        for (const record of batch.records) out(formatRecord(record, format));
        if (batch.stop.reason !== 'limit') break;
      }
      reportTorn();
      return reader.lastStop?.reason === 'torn' ? 1 : 0;
    }
    const batches = reader.follow({ intervalMs, signal: stop.signal });
    for await (const batch of batches) {
      for (const record of batch) out(formatRecord(record, format));
      reportTorn();
    }
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await close();
  }
}

/**
 * The region's checkpoint log, with messages for a shell user: a region that was never
 * formatted, or holds something other than a log, is not damage and is not called ECORRUPT.
 */
async function openLog(region: Region): Promise<CheckpointReader> {
  const head = await region.read(0, Math.min(region.size, MAGIC.length));
  if (head.every((byte) => byte === 0)) {
    throw new PmuError('ENOENT', `region '${region.name}' holds no checkpoint log yet: nothing to tail until a primary has formatted it (it starts with the first checkpoint written)`);
  }
  if (!head.equals(MAGIC)) {
    throw new PmuError('EINVAL', `region '${region.name}' is not a checkpoint log (it does not start with a checkpoint header): pmu tail reads regions written by a checkpoint primary; use pmu read for raw bytes`);
  }
  return CheckpointReader.open(region);
}

function formatRecord(record: LogRecord, format: Format): string {
  const head = { sequence: record.sequence, type: record.type, epoch: record.epoch, bytes: record.payload.length };
  if (format === 'json') {
    const printable = isPrintable(record.payload);
    return JSON.stringify({ ...head, ...(printable ? { text: record.payload.toString('utf8') } : { hex: record.payload.toString('hex') }) });
  }
  const body = format === 'text' && isPrintable(record.payload) ? record.payload.toString('utf8') : record.payload.toString('hex');
  return `${head.sequence}\t${head.type}\tepoch ${head.epoch}\t${head.bytes} B\t${body}`;
}

function isPrintable(bytes: Buffer): boolean {
  const text = bytes.toString('utf8');
  return !text.includes('\uFFFD') && !/[\u0000-\u0008\u000b-\u001f\u007f]/.test(text);
}
