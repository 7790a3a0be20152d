/**
 * watchWriters subscriptions: who listens to which region, bounded per connection and per
 * region, and the events that tell them a writer left. Delivery (with coalescing for a
 * subscriber that does not read) is the connection's job: Session.pushEvent.
 */
import type { ServerLimits } from './limits';
import { KEY_BYTES, RIGHTS_READ } from './protocol';
import type { Session } from './session';

export class Subscriptions {
  /** handle -> subscription id -> subscriber */
  private readonly byHandle = new Map<number, Map<number, Session>>();
  /** subscriber -> subscription id -> handle */
  private readonly bySession = new Map<Session, Map<number, number>>();
  private nextId = 1;

  constructor(private readonly limits: ServerLimits) {}

  /** A new subscription id, or a refusal message naming the limit that is full. */
  subscribe(session: Session, handle: number): number | { limit: string; message: string } {
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

  unsubscribe(session: Session, id: number): boolean {
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
  dropHandle(session: Session, handle: number): void {
    const mine = this.bySession.get(session);
    if (!mine) return;
    for (const [id, watched] of [...mine]) if (watched === handle) this.unsubscribe(session, id);
  }

  dropSession(session: Session): void {
    const mine = this.bySession.get(session);
    if (mine) for (const id of [...mine.keys()]) this.unsubscribe(session, id);
  }

  count(session: Session): number {
    return this.bySession.get(session)?.size ?? 0;
  }

  /** `writer` held `handle` read-write and closed it or went away: tell the other subscribers. */
  writerGone(writer: Session, user: string, handle: number, reason: number): void {
    const forHandle = this.byHandle.get(handle);
    if (!forHandle) return;
    for (const [id, subscriber] of forHandle) if (subscriber !== writer) subscriber.pushEvent(id, reason, user);
  }
}

// ---- requests -----------------------------------------------------------------------------

export function onWatch(session: Session, id: number, body: Buffer): void {
  if (body.length !== 4 + KEY_BYTES) return session.replyError(id, 'EPROTO', `WATCH body of ${body.length} bytes; expected ${4 + KEY_BYTES}`);
  const binding = session.bindings.check(body, 'WATCH', RIGHTS_READ, session.principal.user);
  if (!('region' in binding)) return session.replyError(id, binding.code, binding.message);
  const subscribed = session.host.subscriptions.subscribe(session, binding.handle);
  if (typeof subscribed !== 'number') {
    session.host.limitHit(subscribed.limit, { connection: session.connectionId, user: session.principal.user, peer: session.peer, region: binding.name });
    return session.replyError(id, 'ETOOMANY', subscribed.message);
  }
  const reply = Buffer.allocUnsafe(4);
  reply.writeUInt32LE(subscribed);
  session.reply(id, reply);
}

export function onUnwatch(session: Session, id: number, body: Buffer): void {
  if (body.length !== 4) return session.replyError(id, 'EPROTO', `UNWATCH body of ${body.length} bytes; expected 4`);
  const subscription = body.readUInt32LE(0);
  if (!session.host.subscriptions.unsubscribe(session, subscription)) return session.replyError(id, 'ENOENT', `no subscription ${subscription} on this connection`);
  session.reply(id, EMPTY);
}

const EMPTY = Buffer.alloc(0);
