/** WATCH and UNWATCH: subscribe to a region's writer-left events (server/subscriptions.ts keeps them). */
import { KEY_BYTES, RIGHTS_READ } from '../../wire/protocol';
import type { Session } from '../session';

const EMPTY = Buffer.alloc(0);

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
