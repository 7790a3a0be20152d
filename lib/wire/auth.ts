/**
 * Mutual challenge-response authentication. Neither side ever sends the secret:
 *   server -> HELLO: version, flags, idle timeout, server nonce (32 random bytes), identity
 *   client -> AUTH:  client nonce, client proof, user               (header flags: AUTH_SEAL)
 *   server -> OK:    server proof, admin flag           (or ERROR EAUTH, then close)
 * proof = HMAC-SHA256(secret, "pmu-auth-v3 <side>\0" | u16 version | u16 authFlags | serverNonce
 *                     | clientNonce | u8 len | identity | u8 len | channelBinding | user)
 * Both nonces enter both proofs, so neither side can replay an old exchange; the different
 * labels keep one side's proof from being reflected back as the other's. The identity (the
 * name the server announced, e.g. its id in a set) and the flags are covered, so a relay can
 * neither present one PMU as another nor strip the request to seal. On TLS the channel binding
 * (an exporter of the TLS session, RFC 5705) is covered too: a relay that terminates TLS has a
 * different session on each side, and the proofs it forwards fail.
 */
import * as crypto from 'node:crypto';
import type * as tls from 'node:tls';
import { NONCE_BYTES, PROOF_BYTES } from './protocol';

export type ProofSide = 'client' | 'server';

/** What both proofs and the session keys are computed over. */
export interface Transcript {
  version: number;
  /** The AUTH frame's flags (AUTH_SEAL). */
  authFlags: number;
  serverNonce: Buffer;
  clientNonce: Buffer;
  user: string;
  /** The identity the server announced in HELLO ('' for none). */
  identity: string;
  /** The TLS session's exporter, or empty on a plain socket. */
  channelBinding: Buffer;
}

export const CHANNEL_BINDING_BYTES = 32;
const CHANNEL_BINDING_LABEL = 'EXPORTER-pmu-channel-binding';

export function randomNonce(): Buffer {
  return crypto.randomBytes(NONCE_BYTES);
}

/** The TLS session's channel binding (empty for a plain socket). */
export function channelBinding(socket: tls.TLSSocket | undefined): Buffer {
  if (!socket || typeof socket.exportKeyingMaterial !== 'function') return Buffer.alloc(0);
  return socket.exportKeyingMaterial(CHANNEL_BINDING_BYTES, CHANNEL_BINDING_LABEL, Buffer.alloc(0));
}

export function proof(side: ProofSide, secret: string, transcript: Transcript): Buffer {
  return covered(crypto.createHmac('sha256', secret).update(`pmu-auth-v3 ${side}\0`), transcript).digest();
}

/** The two keys a sealed session tags its frames with, one per direction. */
export function sessionKeys(secret: string, transcript: Transcript): { clientToServer: Buffer; serverToClient: Buffer } {
  const key = (direction: string) => covered(crypto.createHmac('sha256', secret).update(`pmu-seal-v1 ${direction}\0`), transcript).digest();
  return { clientToServer: key('client to server'), serverToClient: key('server to client') };
}

function covered(hmac: crypto.Hmac, t: Transcript): crypto.Hmac {
  const fixed = Buffer.alloc(4);
  fixed.writeUInt16LE(t.version, 0);
  fixed.writeUInt16LE(t.authFlags, 2);
  const identity = Buffer.from(t.identity, 'utf8');
  return hmac
    .update(fixed)
    .update(t.serverNonce)
    .update(t.clientNonce)
    .update(Buffer.from([identity.length]))
    .update(identity)
    .update(Buffer.from([t.channelBinding.length]))
    .update(t.channelBinding)
    .update(t.user, 'utf8');
}

/** Constant-time comparison; false (never a throw) for a length mismatch. */
export function proofsMatch(expected: Buffer, presented: Buffer): boolean {
  return presented.length === PROOF_BYTES && expected.length === PROOF_BYTES && crypto.timingSafeEqual(expected, presented);
}

/** A new secret: 32 random bytes as 64 hex digits (easy to paste into an environment variable). */
export function newSecret(): string {
  return crypto.randomBytes(32).toString('hex');
}
