/**
 * Starting a primary in one call: format the region if it is blank, otherwise take the log
 * over (fencing whoever wrote it before) and hand back what it holds, so a restarted primary
 * recovers its state exactly as a backup taking over would.
 */
import { Region } from '../unit/region';
import { readHeader } from './header';
import { CheckpointReader, Takeover } from './reader';
import { CheckpointWriter, CheckpointWriterOptions } from './writer';

export async function openPrimary(region: Region, options: CheckpointWriterOptions = {}): Promise<Takeover> {
  const header = await readHeader(region);
  if (header) {
    const reader = await CheckpointReader.open(region);
    return reader.takeover({ ...options, expectedEpoch: header.epoch });
  }
  const writer = await CheckpointWriter.open(region, options);
  const reader = await CheckpointReader.open(region);
  return { writer, reader, records: [], epoch: writer.epoch };
}
