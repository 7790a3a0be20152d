/**
 * What a client can make the server hold, and the configured bound of each. Every limit here
 * is stated with its default in docs/PROTOCOL.md ("Limits"); change both together. Hitting a
 * bound is an error for that client alone: the server and its other clients carry on.
 */
import { checkInteger } from '../unit/validate';
import { BODY_OVERHEAD_BYTES, DEFAULT_MAX_PAYLOAD_BYTES } from '../wire/protocol';

export interface ServerLimits {
  /** Largest WRITE payload / READ length. */
  maxPayloadBytes: number;
  /** Body limit of every request other than WRITE (OPEN, CREATE, SET_GRANTS, ... are small JSON or names). */
  maxControlBodyBytes: number;
  /** Connections open at once, authenticated or not. */
  maxConnections: number;
  /** Authenticated connections of one user. */
  maxConnectionsPerUser: number;
  /** Connections still in their handshake; past it the oldest is closed to make room. */
  maxPendingHandshakes: number;
  /** Bytes of partly received request bodies, all connections together. */
  maxBufferedBytes: number;
  /** Of which one user may hold. */
  maxBufferedBytesPerUser: number;
  /**
   * A body arriving in pieces must deliver BODY_PROGRESS_BYTES (or its rest) this often;
   * past it the connection is closed (ETIMEDOUT) and its budget freed. A drip does not count.
   */
  bodyStallTimeoutMs: number;
  /** watchWriters subscriptions per connection. */
  maxSubscriptionsPerConnection: number;
  /** watchWriters subscriptions per region, all connections together. */
  maxSubscriptionsPerRegion: number;
  /** Events waiting for a subscriber that does not read; past it the subscriber is disconnected. */
  maxEventBacklogBytes: number;
  /** Requests in flight per connection before the server stops reading it. */
  maxInFlightPerConnection: number;
  /** A connection must authenticate this soon after connecting. */
  handshakeTimeoutMs: number;
  /** A connection with no traffic either way for this long is closed; 0 = never. */
  idleTimeoutMs: number;
}

export const DEFAULT_LIMITS: Readonly<ServerLimits> = Object.freeze({
  maxPayloadBytes: DEFAULT_MAX_PAYLOAD_BYTES,
  maxControlBodyBytes: 64 * 1024,
  maxConnections: 1000,
  maxConnectionsPerUser: 64,
  maxPendingHandshakes: 128,
  maxBufferedBytes: 256 * 1024 * 1024,
  maxBufferedBytesPerUser: 160 * 1024 * 1024,
  bodyStallTimeoutMs: 30_000,
  maxSubscriptionsPerConnection: 64,
  maxSubscriptionsPerRegion: 1024,
  maxEventBacklogBytes: 64 * 1024,
  maxInFlightPerConnection: 1024,
  handshakeTimeoutMs: 5000,
  idleTimeoutMs: 300_000,
});

/**
 * What a body arriving in pieces must deliver every bodyStallTimeoutMs to count as moving:
 * with the default deadline, about 2 KiB/s. A byte now and then keeps nothing alive.
 */
export const BODY_PROGRESS_BYTES = 64 * 1024;

/** Fills defaults and checks each given limit; throws EINVAL naming the bad one. */
export function resolveLimits(given: Partial<ServerLimits> = {}): ServerLimits {
  const limits = { ...DEFAULT_LIMITS } as ServerLimits;
  for (const name of Object.keys(DEFAULT_LIMITS) as Array<keyof ServerLimits>) {
    const value = given[name];
    if (value === undefined) continue;
    const min = name === 'idleTimeoutMs' ? 0 : 1;
    const max = name === 'maxPayloadBytes' ? 0xffff_ffff - BODY_OVERHEAD_BYTES : Number.MAX_SAFE_INTEGER;
    limits[name] = checkInteger(name, value, min, max);
  }
  return limits;
}

/** Body limit after authentication: the largest payload plus a data op's fixed fields. */
export function maxBodyBytes(limits: ServerLimits): number {
  return limits.maxPayloadBytes + BODY_OVERHEAD_BYTES;
}
