/**
 * Admission control: how many connections the server holds (in total, per user, and still in
 * their handshake, TLS handshake included) and how many bytes of partly received request
 * bodies (in total and per user), counted as they arrive. Every limit comes from ServerLimits; a refusal names the limit and its value, so the
 * client that hit it knows what happened, and nobody else is affected.
 */
import type { ServerLimits } from './limits';

export interface Admitted {
  /** Set once authenticated. */
  user: string | undefined;
  /** Closes a connection evicted to make room; it may be called more than once. */
  evict(reason: string): void;
}

export class Admission {
  private readonly open = new Set<Admitted>();
  /** Connections still in their handshake, oldest first (a Set iterates in insertion order). */
  private readonly pending = new Set<Admitted>();
  private readonly perUser = new Map<string, number>();
  private buffered = 0;
  private readonly bufferedPerUser = new Map<string, number>();

  constructor(private readonly limits: ServerLimits) {}

  get connections(): number {
    return this.open.size;
  }

  get bufferedBytes(): number {
    return this.buffered;
  }

  /**
   * A new connection. Silent connections cannot lock others out: when the handshake slots or
   * the total are full, the oldest connection still in its handshake is closed to make room.
   * Returns a refusal message when the server is full of authenticated connections.
   */
  admit(connection: Admitted): string | undefined {
    if (this.pending.size >= this.limits.maxPendingHandshakes || this.open.size >= this.limits.maxConnections) {
      const oldest = this.pending.values().next().value as Admitted | undefined;
      if (oldest) {
        this.release(oldest);
        oldest.evict(`closed to make room: ${this.limits.maxPendingHandshakes} connections were waiting to authenticate (limit maxPendingHandshakes); authenticate promptly after HELLO`);
      }
    }
    if (this.open.size >= this.limits.maxConnections) return `the server holds ${this.open.size} connections (limit maxConnections ${this.limits.maxConnections}); retry later`;
    this.open.add(connection);
    this.pending.add(connection);
    return undefined;
  }

  /** The connection authenticated as `user`; a refusal message if the user holds too many already. */
  authenticate(connection: Admitted, user: string): string | undefined {
    const count = this.perUser.get(user) ?? 0;
    if (count >= this.limits.maxConnectionsPerUser) return `user '${user}' already holds ${count} connections (limit maxConnectionsPerUser ${this.limits.maxConnectionsPerUser}); close some first`;
    this.pending.delete(connection);
    this.perUser.set(user, count + 1);
    connection.user = user;
    return undefined;
  }

  release(connection: Admitted): void {
    if (!this.open.delete(connection)) return;
    this.pending.delete(connection);
    const user = connection.user;
    if (user === undefined) return;
    const count = (this.perUser.get(user) ?? 1) - 1;
    if (count > 0) this.perUser.set(user, count);
    else this.perUser.delete(user);
  }

  /**
   * Reserves room for `bytes` more of a request body arriving in pieces, as they arrive: the
   * budget counts bytes received, never what a header claims, so a claim alone holds nothing.
   * A refusal message if there is no room.
   */
  reserveBody(user: string, bytes: number): { limit: string; message: string } | undefined {
    const mine = this.bufferedPerUser.get(user) ?? 0;
    if (mine + bytes > this.limits.maxBufferedBytesPerUser) {
      const limit = 'maxBufferedBytesPerUser';
      return { limit, message: `user '${user}' already has ${mine} bytes of requests arriving; ${bytes} bytes more would pass the limit of ${this.limits.maxBufferedBytesPerUser} (maxBufferedBytesPerUser); wait for your writes to finish` };
    }
    if (this.buffered + bytes > this.limits.maxBufferedBytes) {
      const limit = 'maxBufferedBytes';
      return { limit, message: `the server holds ${this.buffered} bytes of requests arriving; ${bytes} bytes more would pass the limit of ${this.limits.maxBufferedBytes} (maxBufferedBytes); retry shortly` };
    }
    this.buffered += bytes;
    this.bufferedPerUser.set(user, mine + bytes);
    return undefined;
  }

  releaseBody(user: string, bytes: number): void {
    this.buffered -= bytes;
    const left = (this.bufferedPerUser.get(user) ?? bytes) - bytes;
    if (left > 0) this.bufferedPerUser.set(user, left);
    else this.bufferedPerUser.delete(user);
  }
}
