/**
 * `pmu inspect --verify` on a crafted checkpoint header: any capacity, data offset and cursor
 * words, with the header CRC fixed so only the geometry checks stand between them and the
 * ring arithmetic. Each is reported as damage (ECORRUPT or a verdict that fails), never a bare
 * RangeError and never "ok" for geometry formatting cannot produce. fast-check, 300 headers.
 */
import fc from 'fast-check';
import { openPrimary, verifyRegion } from '../lib/checkpoint';
import { PmuError } from '../lib/unit/errors';
import { crc32c } from '../lib/unit/native';
import { PersistentMemoryUnit } from '../lib/unit/unit';
import { removeTempDirs, tempFile } from './helpers/temp';

afterAll(removeTempDirs);

test('crafted headers with a valid CRC: damage reported, never a RangeError, never ok for impossible geometry', async () => {
  const unit = PersistentMemoryUnit.open(tempFile(), { size: 2 << 20 });
  const region = unit.createRegion('crafted', 256 << 10);
  await (await openPrimary(region, { mode: 'append', heartbeatMs: 0 })).writer.close();
  const original = await region.read(0, 80);
  const formatted = { dataOffset: Number(original.readBigUInt64LE(48)), capacity: Number(original.readBigUInt64LE(56)) };
  const interesting = fc.oneof(fc.constantFrom(0, 1, 7, 8, 9, 40, 80, 4095, 4096, 4097, 160, formatted.capacity, formatted.capacity + 8, 1 << 20), fc.integer({ min: 0, max: 2 ** 40 }));
  try {
    await fc.assert(
      fc.asyncProperty(interesting, interesting, fc.boolean(), async (capacity, dataOffset, overwrite) => {
        const header = Buffer.from(original);
        header.writeUInt32LE(overwrite ? 1 : 2, 12);
        header.writeBigUInt64LE(BigInt(capacity), 56);
        header.writeBigUInt64LE(BigInt(dataOffset), 48);
        const logId = header.readUInt32LE(64);
        header.writeUInt32LE(crc32c(header.subarray(48, 68), crc32c(header.subarray(0, 16), logId)), 68);
        await region.write(0, header);
        let verdict;
        try {
          verdict = await verifyRegion(region);
        } catch (error) {
          expect(error).toBeInstanceOf(PmuError);
          expect((error as PmuError).code).toBe('ECORRUPT');
          return;
        }
        const possible = !overwrite && capacity === formatted.capacity && dataOffset === formatted.dataOffset;
        if (!possible) expect(verdict.ok).toBe(false);
      }),
      { numRuns: 300 },
    );
  } finally {
    await unit.close();
  }
});
