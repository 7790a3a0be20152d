/**
 * The requests an authenticated connection may send: one row per opcode, naming its handler.
 * Adding an op is a row here, a handler in this folder, and a method on the client side
 * (lib/client). The connection looks a frame's opcode up here and knows nothing of the ops.
 * AUTH and HELLO have no row: they belong to the handshake (server/handshake.ts).
 */
import { Op } from '../../wire/protocol';
import type { Session } from '../session';
import { onChecksum, onCompareAndSwap, onFlush, onRead, onWrite } from './data-ops';
import { onCloseRegion, onCreate, onDelete, onList, onOpen, onSetGrants } from './pmm-ops';
import { onUnwatch, onWatch } from './watch-ops';

/** Handles one request frame; replies (now or later) through the session. */
export type OpHandler = (session: Session, id: number, flags: number, body: Buffer) => void;

const EMPTY = Buffer.alloc(0);

const rows: Array<[Op, OpHandler]> = [
  // one-sided data operations (the hot path: WRITE's handler is called directly, no wrapper)
  [Op.WRITE, onWrite],
  [Op.READ, (session, id, _flags, body) => onRead(session, id, body)],
  [Op.FLUSH, (session, id, _flags, body) => onFlush(session, id, body)],
  [Op.CAS, onCompareAndSwap],
  [Op.CHECKSUM, (session, id, _flags, body) => onChecksum(session, id, body)],
  [Op.PING, (session, id) => session.reply(id, EMPTY)],
  // persistent memory manager
  [Op.OPEN, (session, id, _flags, body) => onOpen(session, id, body)],
  [Op.CLOSE, (session, id, _flags, body) => onCloseRegion(session, id, body)],
  [Op.CREATE, (session, id, _flags, body) => onCreate(session, id, body)],
  [Op.DELETE, (session, id, _flags, body) => onDelete(session, id, body)],
  [Op.LIST, (session, id) => onList(session, id)],
  [Op.SET_GRANTS, (session, id, _flags, body) => onSetGrants(session, id, body)],
  // failure detection
  [Op.WATCH, (session, id, _flags, body) => onWatch(session, id, body)],
  [Op.UNWATCH, (session, id, _flags, body) => onUnwatch(session, id, body)],
];

/** Indexed by opcode (a u8): one array load per frame, no switch to find. */
export const OP_TABLE: ReadonlyArray<OpHandler | undefined> = (() => {
  const table = new Array<OpHandler | undefined>(256).fill(undefined);
  for (const [op, handler] of rows) table[op] = handler;
  return table;
})();
