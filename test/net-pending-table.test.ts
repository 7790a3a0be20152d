/**
 * PendingTable (the client's requests in flight) against a Map as the model: whatever the
 * order of requests sent, answered, answered late or twice, it finds the same entries, never
 * hands out an id in use or NO_REQUEST, and grows past any number in flight. Bounded: < 1 s.
 */
import fc from 'fast-check';
import { PendingTable } from '../lib/client/pending-table';
import { NO_REQUEST } from '../lib/wire/protocol';

interface Entry {
  id: number;
  tag: number;
}

test('behaves as a Map of the ids it handed out', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.boolean(), fc.nat(1000)), { maxLength: 400 }), (steps) => {
      const table = new PendingTable<Entry>();
      const model = new Map<number, Entry>();
      const retired: number[] = [];
      let tag = 0;
      for (const [send, pick] of steps) {
        if (send || model.size === 0) {
          const id = table.takeId();
          expect(id).not.toBe(NO_REQUEST);
          expect(model.has(id)).toBe(false);
          const entry = { id, tag: ++tag };
          table.add(entry);
          model.set(id, entry);
        } else {
          // Answer one in flight, and now and then a reply for an id already answered.
          const ids = [...model.keys()];
          const id = ids[pick % ids.length];
          expect(table.take(id)).toBe(model.get(id));
          model.delete(id);
          retired.push(id);
          if (pick % 3 === 0) expect(table.take(retired[pick % retired.length])).toBeUndefined();
        }
        expect(table.size).toBe(model.size);
      }
      expect(new Set(table.values())).toEqual(new Set(model.values()));
      table.clear();
      expect(table.size).toBe(0);
      expect(table.values()).toEqual([]);
    }),
    { numRuns: 300 },
  );
});

test('holds thousands in flight at once (it grows), then finds each by id', () => {
  const table = new PendingTable<Entry>();
  const entries: Entry[] = [];
  for (let i = 0; i < 5000; i++) {
    const entry = { id: table.takeId(), tag: i };
    table.add(entry);
    entries.push(entry);
  }
  expect(new Set(entries.map((e) => e.id)).size).toBe(5000);
  expect(table.size).toBe(5000);
  for (const entry of entries.reverse()) expect(table.take(entry.id)).toBe(entry);
  expect(table.size).toBe(0);
  expect(table.take(NO_REQUEST)).toBeUndefined();
});
