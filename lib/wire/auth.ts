/**
 * Mutual challenge-response authentication. Neither side ever sends the secret:
 *   server -> HELLO: version, idle timeout, server nonce (32 random bytes)
 *   client -> AUTH:  client nonce, client proof, user
 *   server -> OK:    server proof, admin flag           (or ERROR EAUTH, then close)
 * client proof = HMAC-SHA256(secret, "pmu-auth-v1 client" | version | server nonce | client nonce | user)
 * server proof = HMAC-SHA256(secret, "pmu-auth-v1 server" | version | server nonce | client nonce | user)
 * Both nonces enter both proofs, so neither side can replay an old exchange; the different
 * labels keep one side's proof from being reflected back as the other's.
 */
import * as crypto from 'node:crypto';
import { NONCE_BYTES, PROOF_BYTES } from './protocol';

export type ProofSide = 'client' | 'server';

export function randomNonce(): Buffer {
  return crypto.randomBytes(NONCE_BYTES);
}

export function proof(side: ProofSide, secret: string, version: number, serverNonce: Buffer, clientNonce: Buffer, user: string): Buffer {
  const versionBytes = Buffer.alloc(2);
  versionBytes.writeUInt16LE(version);
  return crypto
    .createHmac('sha256', secret)
    .update(`pmu-auth-v1 ${side}\0`)
    .update(versionBytes)
    .update(serverNonce)
    .update(clientNonce)
    .update(user, 'utf8')
    .digest();
}

/** Constant-time comparison; false (never a throw) for a length mismatch. */
export function proofsMatch(expected: Buffer, presented: Buffer): boolean {
  return presented.length === PROOF_BYTES && expected.length === PROOF_BYTES && crypto.timingSafeEqual(expected, presented);
}

/** A new secret: 32 random bytes as 64 hex digits (easy to paste into an environment variable). */
export function newSecret(): string {
  return crypto.randomBytes(32).toString('hex');
}
