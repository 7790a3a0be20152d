/**
 * The server's half of the handshake (the proofs themselves are wire/auth.ts):
 *   server -> HELLO: version, flags, idle timeout, server nonce, identity
 *   client -> AUTH:  client nonce, client proof, user   (flags: AUTH_SEAL)
 *   server -> OK:    server proof, admin flag           (or ERROR EAUTH, then close)
 * Pure functions of the frames and the users table: the connection keeps the state.
 */
import { PmuErrorCode } from '../unit/errors';
import { USER_MAX_BYTES } from '../unit/unit';
import { proof, proofsMatch, sessionKeys, Transcript } from '../wire/auth';
import { AUTH_SEAL, HELLO_BYTES, HELLO_CAN_SEAL, NONCE_BYTES, PROOF_BYTES, PROTOCOL_VERSION } from '../wire/protocol';
import type { Principal } from './access';
import type { UserRecord } from './users';

/** Who a connection authenticated as; the secret is kept to notice when it changes. */
export interface Authenticated extends Principal {
  secret: string;
}

/** `identity`: the server's name (its id in a set, or ''), already checked (at most IDENTITY_MAX_BYTES). */
export function helloBody(idleTimeoutMs: number, serverNonce: Buffer, identity: string): Buffer {
  const name = Buffer.from(identity, 'utf8');
  const hello = Buffer.allocUnsafe(HELLO_BYTES + name.length);
  hello.writeUInt16LE(PROTOCOL_VERSION, 0);
  hello.writeUInt16LE(HELLO_CAN_SEAL, 2);
  hello.writeUInt32LE(Math.min(idleTimeoutMs, 0xffffffff), 4);
  serverNonce.copy(hello, 8);
  name.copy(hello, HELLO_BYTES);
  return hello;
}

/** The server's side of the transcript: what it announced, and its TLS session. */
export interface ServerSide {
  serverNonce: Buffer;
  identity: string;
  channelBinding: Buffer;
}

export type AuthOutcome =
  | { ok: true; principal: Authenticated; reply: Buffer; seal?: { clientToServer: Buffer; serverToClient: Buffer } }
  | { ok: false; code: PmuErrorCode; message: string; badProof?: string };

/**
 * Checks an AUTH body against the users table. `dummySecret` stands in for an unknown user,
 * so a failed login costs the same HMAC whoever it names.
 */
export function checkAuth(body: Buffer, flags: number, side: ServerSide, lookupUser: (name: string) => UserRecord | undefined, dummySecret: string): AuthOutcome {
  if (body.length <= NONCE_BYTES + PROOF_BYTES) return { ok: false, code: 'EPROTO', message: `AUTH body of ${body.length} bytes is too short` };
  if ((flags & ~AUTH_SEAL) !== 0) return { ok: false, code: 'EPROTO', message: `AUTH flags 0x${flags.toString(16)} name options this server does not know` };
  const clientNonce = Buffer.from(body.subarray(0, NONCE_BYTES));
  const presented = body.subarray(NONCE_BYTES, NONCE_BYTES + PROOF_BYTES);
  const user = body.subarray(NONCE_BYTES + PROOF_BYTES).toString('utf8');
  const record = lookupUser(user);
  const transcript: Transcript = { version: PROTOCOL_VERSION, authFlags: flags, serverNonce: side.serverNonce, clientNonce, user, identity: side.identity, channelBinding: side.channelBinding };
  const expected = proof('client', record?.secret ?? dummySecret, transcript);
  if (!proofsMatch(expected, presented) || !record) {
    const shown = bounded(user);
    return { ok: false, code: 'EAUTH', message: `authentication failed for user ${JSON.stringify(shown)}: unknown user or wrong secret`, badProof: shown };
  }
  const reply = Buffer.allocUnsafe(PROOF_BYTES + 1);
  proof('server', record.secret, transcript).copy(reply, 0);
  reply[PROOF_BYTES] = record.admin ? 1 : 0;
  const seal = flags & AUTH_SEAL ? sessionKeys(record.secret, transcript) : undefined;
  return { ok: true, principal: { user, admin: record.admin, secret: record.secret }, reply, seal };
}

/** A user name as it may appear in a reply or a log: at most USER_MAX_BYTES characters and a mark. */
function bounded(user: string): string {
  return user.length > USER_MAX_BYTES ? user.slice(0, USER_MAX_BYTES) + '…' : user;
}
