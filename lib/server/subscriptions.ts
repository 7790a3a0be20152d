/**
 * watchWriters subscriptions: who listens to which region, bounded per connection and per
 * region, and the events that tell them a writer left. Delivery (with coalescing for a
 * subscriber that does not read) is the connection's job: Subscriber.pushEvent. The WATCH and
 * UNWATCH requests are ops/watch-ops.ts.
 */
import type { ServerLimits } from './limits';

/** Whoever holds subscriptions: a server connection (Session extends this). */
export interface Subscriber {
  /** A watchWriters event for this subscriber's subscription `subscriptionId`. */
  pushEvent(subscriptionId: number, reason: number, user: string): void;
}

export class Subscriptions {
  /** handle -> subscription id -> subscriber */
  private readonly byHandle = new Map<number, Map<number, Subscriber>>();
  /** subscriber -> subscription id -> handle */
  private readonly bySession = new Map<Subscriber, Map<number, number>>();
  private nextId = 1;

  constructor(private readonly limits: ServerLimits) {}

  /** A new subscription id, or a refusal message naming the limit that is full. */
  subscribe(session: Subscriber, handle: number): number | { limit: string; message: string } {
    const mine = this.bySession.get(session);
    if (mine && mine.size >= this.limits.maxSubscriptionsPerConnection) {
      return { limit: 'maxSubscriptionsPerConnection', message: `this connection already holds ${mine.size} subscriptions (limit maxSubscriptionsPerConnection ${this.limits.maxSubscriptionsPerConnection}); one per region is enough, UNWATCH the others` };
    }
    const forHandle = this.byHandle.get(handle);
    if (forHandle && forHandle.size >= this.limits.maxSubscriptionsPerRegion) {
      return { limit: 'maxSubscriptionsPerRegion', message: `region handle ${handle} already has ${forHandle.size} subscriptions (limit maxSubscriptionsPerRegion ${this.limits.maxSubscriptionsPerRegion})` };
    }
    const id = this.nextId++;
    if (forHandle) forHandle.set(id, session);
    else this.byHandle.set(handle, new Map([[id, session]]));
    if (mine) mine.set(id, handle);
    else this.bySession.set(session, new Map([[id, handle]]));
    return id;
  }

  unsubscribe(session: Subscriber, id: number): boolean {
    const mine = this.bySession.get(session);
    const handle = mine?.get(id);
    if (handle === undefined || !mine) return false;
    mine.delete(id);
    if (mine.size === 0) this.bySession.delete(session);
    const forHandle = this.byHandle.get(handle);
    forHandle?.delete(id);
    if (forHandle && forHandle.size === 0) this.byHandle.delete(handle);
    return true;
  }

  /** The session lost its right to `handle` (revoked, deleted): its subscriptions on it end. */
  dropHandle(session: Subscriber, handle: number): void {
    const mine = this.bySession.get(session);
    if (!mine) return;
    for (const [id, watched] of [...mine]) if (watched === handle) this.unsubscribe(session, id);
  }

  dropSession(session: Subscriber): void {
    const mine = this.bySession.get(session);
    if (mine) for (const id of [...mine.keys()]) this.unsubscribe(session, id);
  }

  count(session: Subscriber): number {
    return this.bySession.get(session)?.size ?? 0;
  }

  /** `writer` held `handle` read-write and closed it or went away: tell the other subscribers. */
  writerGone(writer: Subscriber, user: string, handle: number, reason: number): void {
    const forHandle = this.byHandle.get(handle);
    if (!forHandle) return;
    for (const [id, subscriber] of forHandle) if (subscriber !== writer) subscriber.pushEvent(id, reason, user);
  }
}
