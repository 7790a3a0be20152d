/**
 * The narrow faces the pieces of a server connection see of each other. A connection
 * (connection.ts: lifecycle, handshake, flow control, limits) is a Session to the
 * request handlers (ops/); the server is their
 * ConnectionHost. Each handler file reaches only what is listed here.
 */
import { EventLog } from '../obs/log';
import { PmuErrorCode } from '../unit/errors';
import { PersistentMemoryUnit } from '../unit/unit';
import { Principal } from './access';
import type { Admission } from './admission';
import type { BindingTable } from './bindings';
import type { ServerLimits } from './limits';
import type { Subscriber, Subscriptions } from './subscriptions';
import { UserRecord } from './users';

export interface ConnectionHost {
  readonly unit: PersistentMemoryUnit;
  readonly limits: ServerLimits;
  /** Body limit after authentication (largest payload + fixed fields). */
  readonly maxBodyBytes: number;
  readonly log: EventLog;
  readonly admission: Admission;
  readonly subscriptions: Subscriptions;
  /** A secret for unknown users, made once: a failed login costs the same whoever it names. */
  readonly dummySecret: string;
  /** The name HELLO announces and the proofs cover: the PMU's id in a set, or ''. */
  readonly identity: string;
  lookupUser(name: string): UserRecord | undefined;
  /** A refusal's message as a client may read it: the server's own file path is not the client's business. */
  forClient(message: string): string;
  /** Every frame received, before authentication too; `from` is its connection. */
  countRequest(op: number, bodyBytes: number, from: object): void;
  countRefusal(code: PmuErrorCode): void;
  /** A client hit `limit` (a ServerLimits name): counted and logged, in one place. */
  limitHit(limit: string, fields: Record<string, unknown>): void;
  /** Grants, regions or users changed: every connection re-checks what it holds, now. */
  accessChanged(): void;
  connectionClosed(session: Session): void;
}

export interface Session extends Subscriber {
  readonly host: ConnectionHost;
  readonly bindings: BindingTable;
  /** Set once authenticated; request handlers only run after that. */
  readonly principal: Principal;
  /** For logs: a number per connection and the peer address. */
  readonly connectionId: number;
  readonly peer: string;
  reply(id: number, body: Buffer): void;
  replyError(id: number, code: PmuErrorCode, message: string): void;
  /** Replies OK with a body of `length` bytes that `fill` writes in place (READ). */
  replyFilled(id: number, length: number, fill: (body: Buffer) => void): void;
  /** Replies when `work` settles (OK with its body, or ERROR with its code). */
  track(id: number, work: Promise<Buffer>): void;
}
