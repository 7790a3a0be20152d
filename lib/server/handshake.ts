/**
 * The server's half of the handshake (the proofs themselves are wire/auth.ts):
 *   server -> HELLO: version, idle timeout, server nonce
 *   client -> AUTH:  client nonce, client proof, user
 *   server -> OK:    server proof, admin flag           (or ERROR EAUTH, then close)
 * Pure functions of the frames and the users table: the connection keeps the state.
 */
import { PmuErrorCode } from '../unit/errors';
import { USER_MAX_BYTES } from '../unit/unit';
import { proof, proofsMatch } from '../wire/auth';
import { HELLO_BYTES, NONCE_BYTES, PROOF_BYTES, PROTOCOL_VERSION } from '../wire/protocol';
import type { Principal } from './access';
import type { UserRecord } from './users';

/** Who a connection authenticated as; the secret is kept to notice when it changes. */
export interface Authenticated extends Principal {
  secret: string;
}

export function helloBody(idleTimeoutMs: number, serverNonce: Buffer): Buffer {
  const hello = Buffer.allocUnsafe(HELLO_BYTES);
  hello.writeUInt16LE(PROTOCOL_VERSION, 0);
  hello.writeUInt16LE(0, 2);
  hello.writeUInt32LE(Math.min(idleTimeoutMs, 0xffffffff), 4);
  serverNonce.copy(hello, 8);
  return hello;
}

export type AuthOutcome =
  | { ok: true; principal: Authenticated; reply: Buffer }
  | { ok: false; code: PmuErrorCode; message: string; badProof?: string };

/**
 * Checks an AUTH body against the users table. `dummySecret` stands in for an unknown user,
 * so a failed login costs the same HMAC whoever it names.
 */
export function checkAuth(body: Buffer, serverNonce: Buffer, lookupUser: (name: string) => UserRecord | undefined, dummySecret: string): AuthOutcome {
  if (body.length <= NONCE_BYTES + PROOF_BYTES) return { ok: false, code: 'EPROTO', message: `AUTH body of ${body.length} bytes is too short` };
  const clientNonce = Buffer.from(body.subarray(0, NONCE_BYTES));
  const presented = body.subarray(NONCE_BYTES, NONCE_BYTES + PROOF_BYTES);
  const user = body.subarray(NONCE_BYTES + PROOF_BYTES).toString('utf8');
  const record = lookupUser(user);
  const expected = proof('client', record?.secret ?? dummySecret, PROTOCOL_VERSION, serverNonce, clientNonce, user);
  if (!proofsMatch(expected, presented) || !record) {
    const shown = bounded(user);
    return { ok: false, code: 'EAUTH', message: `authentication failed for user ${JSON.stringify(shown)}: unknown user or wrong secret`, badProof: shown };
  }
  const reply = Buffer.allocUnsafe(PROOF_BYTES + 1);
  proof('server', record.secret, PROTOCOL_VERSION, serverNonce, clientNonce, user).copy(reply, 0);
  reply[PROOF_BYTES] = record.admin ? 1 : 0;
  return { ok: true, principal: { user, admin: record.admin, secret: record.secret }, reply };
}

/** A user name as it may appear in a reply or a log: at most USER_MAX_BYTES characters and a mark. */
function bounded(user: string): string {
  return user.length > USER_MAX_BYTES ? user.slice(0, USER_MAX_BYTES) + '…' : user;
}
