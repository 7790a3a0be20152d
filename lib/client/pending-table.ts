/**
 * A client's requests on the wire, by request id. A Map cost a new hash table on nearly every
 * reply: V8 shrinks a Map that drops below half its buckets, so a connection with one request
 * at a time rebuilt its table on each delete. Here an entry lives in the slot given by the low
 * bits of its id, and ids are handed out only for free slots, so adding and taking an entry
 * are array stores. The table doubles when it is half full; entries in distinct slots stay in
 * distinct slots, since the low bits that told their ids apart are still in the wider mask.
 */
import { NO_REQUEST } from '../wire/protocol';

export class PendingTable<T extends { id: number }> {
  private slots: Array<T | undefined> = new Array<T | undefined>(16).fill(undefined);
  private mask = 15;
  private count = 0;
  private nextId = 1;

  get size(): number {
    return this.count;
  }

  /** A request id (never NO_REQUEST, u32) whose slot is free: give it to the entry, then add() it. */
  takeId(): number {
    if ((this.count + 1) * 2 > this.slots.length) this.grow();
    let id = this.nextId;
    while (id === NO_REQUEST || this.slots[id & this.mask] !== undefined) id = (id + 1) >>> 0;
    this.nextId = (id + 1) >>> 0;
    return id;
  }

  /** Adds an entry whose id came from takeId() (no other add in between). */
  add(entry: T): void {
    this.slots[entry.id & this.mask] = entry;
    this.count++;
  }

  /** Removes and returns the entry with this id; undefined when there is none (a late reply). */
  take(id: number): T | undefined {
    const slot = id & this.mask;
    const entry = this.slots[slot];
    if (entry === undefined || entry.id !== id) return undefined;
    this.slots[slot] = undefined;
    this.count--;
    return entry;
  }

  /** Every entry, in no particular order (for the deadline sweep and a closing connection). */
  values(): T[] {
    const out: T[] = [];
    for (const entry of this.slots) if (entry !== undefined) out.push(entry);
    return out;
  }

  clear(): void {
    this.slots.fill(undefined);
    this.count = 0;
  }

  private grow(): void {
    const old = this.slots;
    this.slots = new Array<T | undefined>(old.length * 2).fill(undefined);
    this.mask = this.slots.length - 1;
    for (const entry of old) if (entry !== undefined) this.slots[entry.id & this.mask] = entry;
  }
}
