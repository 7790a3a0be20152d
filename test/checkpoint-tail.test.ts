/** pmu tail over an embedded unit's file: prints the log, reports a torn tail. */
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { HEADER_BYTES, RECORD_HEADER_BYTES, recordBytes, openPrimary } from '../lib';
import { removeTempDirs } from './helpers/temp';
import { openEmbedded } from './fixtures/checkpoint-setup';

afterAll(removeTempDirs);

const PMU_BIN = path.join(__dirname, '..', 'bin', 'pmu.js');

test('pmu tail --once prints each record and reports where a torn log stops', async () => {
  const { unit, region, file } = openEmbedded(64 * 1024);
  const writer = (await openPrimary(region, { mode: 'append', heartbeatMs: 0 })).writer;
  await writer.append(Buffer.from('set a=1'));
  await writer.snapshot(Buffer.from([0, 1, 2, 255]));
  await writer.append(Buffer.from('set b=2'));
  // Tear the third record's payload.
  await region.write(HEADER_BYTES + recordBytes(7) + recordBytes(4) + RECORD_HEADER_BYTES, Buffer.from('X'));
  await writer.close();
  await unit.close();
  const result = spawnSync(process.execPath, [PMU_BIN, 'tail', 'log', '--file', file, '--once'], { encoding: 'utf8' });
  expect(result.stdout.trim().split('\n')).toEqual(['1\tupdate\tepoch 1\t7 B\tset a=1', '2\tsnapshot\tepoch 1\t4 B\t000102ff']);
  expect(result.stderr).toMatch(/cannot be trusted past position \d+ \(sequence 3\).*CRC32C/);
  expect(result.status).toBe(1);
});
