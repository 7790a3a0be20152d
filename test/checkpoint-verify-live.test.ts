/**
 * Checking a live log: a replica of a mirrored region is checked (takeover, resync, scrub)
 * while its writer may still append. If the walk reads the newest record's place just before it
 * lands and the search for vouching records then finds the one after it, that must not read as
 * damage. Real damage stays where it is and is still refused. Bound: <1 s.
 */
import { CheckpointReader, HEADER_BYTES, openPrimary, verifyRegion } from '../lib/checkpoint';
import { Region } from '../lib/unit/region';
import { PersistentMemoryUnit } from '../lib/unit/unit';
import { removeTempDirs, tempFile } from './helpers/temp';

afterAll(removeTempDirs);

/** `region` as a reader racing a writer sees it: the first read that covers `offset` finds its 40 bytes not yet written. */
function racing(region: Region, offset: number): Region {
  let raced = false;
  return {
    ...region,
    capabilities: region.capabilities,
    context: region.context,
    name: region.name,
    size: region.size,
    read: async (at: number, length: number) => {
      const bytes = await region.read(at, length);
      if (!raced && at <= offset && offset + 40 <= at + length) {
        raced = true;
        bytes.fill(0, offset - at, offset - at + 40);
      }
      return bytes;
    },
  };
}

async function logOf(count: number) {
  const unit = PersistentMemoryUnit.open(tempFile(), { size: 4 << 20 });
  const region = unit.createRegion('live', 1 << 20);
  const { writer } = await openPrimary(region, { mode: 'append', heartbeatMs: 0 });
  for (let i = 1; i <= count; i++) await writer.append(Buffer.from(`record ${i}`));
  await writer.close();
  const { records } = await (await CheckpointReader.open(region)).readBatch();
  return { unit, region, records };
}

test('a record that lands between the walk and the search is the live end moving, not damage', async () => {
  const { unit, region, records } = await logOf(21);
  const verdict = await verifyRegion(racing(region, HEADER_BYTES + records[19].position));
  expect(verdict.problems).toEqual([]);
  expect(verdict.ok).toBe(true);
  expect(verdict.extent).toBe(21);
  await unit.close();
});

test('a record that stays blank while a later one vouches for it is still damage', async () => {
  const { unit, region, records } = await logOf(21);
  await region.write(HEADER_BYTES + records[19].position, Buffer.alloc(40), { durability: 'mapped' });
  const verdict = await verifyRegion(region);
  expect(verdict.ok).toBe(false);
  expect(verdict.problems.join()).toMatch(/record 20 .* is damaged .*acknowledged records follow the damage/);
  await unit.close();
});
