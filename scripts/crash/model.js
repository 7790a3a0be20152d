'use strict';
/**
 * What the workload was told, and when, in barrier counts. Each event has:
 *   s: barriers completed when it was issued (it may be in any crash point at or after s),
 *   c: barriers completed when it was acknowledged,
 *   d: barriers completed by the time it was durable by contract (a 'flushed' ack, or a later
 *      flush that covered it); Infinity while it is not.
 * A crash point records `barriers` = k: an event with d <= k must be in every image of it.
 */
class History {
  constructor() {
    this.keys = new Map();
    this.order = 0;
  }

  begin(key, value, s, durableOnAck) {
    const event = { key, value, order: this.order++, s, c: Infinity, d: Infinity, durableOnAck };
    if (!this.keys.has(key)) this.keys.set(key, []);
    this.keys.get(key).push(event);
    return event;
  }

  ack(event, c) {
    event.c = c;
    if (event.durableOnAck) event.d = Math.min(event.d, c);
  }

  /** A flush acknowledged at `c` makes durable every matching event issued before it began. */
  cover(predicate, beforeOrder, c) {
    for (const events of this.keys.values()) {
      for (const e of events) if (e.order < beforeOrder && e.c !== Infinity && predicate(e)) e.d = Math.min(e.d, c);
    }
  }

  /**
   * The state of `key` a crash at point k may leave: `base` is the newest durable event (or
   * undefined: the initial state), `later` the events issued since, at or before k. When `later`
   * is empty the state is exactly `base`.
   */
  at(key, k) {
    const events = this.keys.get(key) ?? [];
    let last = -1;
    for (let i = 0; i < events.length; i++) if (events[i].d <= k) last = i;
    const later = events.slice(last + 1).filter((e) => e.s <= k);
    return { base: last >= 0 ? events[last] : undefined, later };
  }
}

/** A small seeded generator (mulberry32), so a workload is reproducible from its seed. */
function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: (list) => list[Math.floor(next() * list.length)],
    chance: (p) => next() < p,
  };
}

/** Bytes of a given length determined by a label: what a slot or payload must hold. */
function pattern(label, length) {
  const out = Buffer.alloc(length);
  let h = 2166136261;
  for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 16777619) >>> 0;
  for (let i = 0; i < length; i++) {
    h = Math.imul(h ^ (h >>> 13), 0x5bd1e995) >>> 0;
    out[i] = (h >>> 24) | 1; // never zero: a zeroed (lost) byte never matches
  }
  return out;
}

module.exports = { History, rng, pattern };
