/**
 * What a PMU server counts as it works: a field increment per event, nothing more. The server
 * hands every event here (server/server.ts); exporters (the Prometheus endpoint, `pmu stat`)
 * read a snapshot when asked. Names of ops and codes come in as plain strings and numbers, so
 * this file knows nothing of the protocol.
 */

/** What PmuServer.stats() returns. */
export interface ServerStats {
  connectionsAccepted: number;
  connectionsOpen: number;
  requests: number;
  /** Requests and request-body bytes received, per operation name (WRITE, READ, OPEN, ...). */
  requestsByOp: Record<string, number>;
  requestBytesByOp: Record<string, number>;
  /** Error replies sent, per code: every refusal (EAUTH, EKEY, EACCESS, ENOENT, ...) is counted here. */
  refusals: Record<string, number>;
  /** Times a client hit each limit (names as in ServerLimits). */
  limitHits: Record<string, number>;
  /** Bytes of request bodies being received right now. */
  bufferedBytes: number;
  /** Times the users were reloaded with a change. */
  usersReloads: number;
  /** Reloads of the users file that failed (unreadable, invalid): the old users stay, and it is retried. */
  usersReloadFailures: number;
}

export class ServerCounters {
  connectionsAccepted = 0;
  requests = 0;
  usersReloads = 0;
  usersReloadFailures = 0;
  private readonly refusals: Record<string, number> = {};
  private readonly limitHits: Record<string, number> = {};
  /** Indexed by opcode (one byte on the wire): a plain increment per request. */
  private readonly requestsByOp = new Array<number>(256).fill(0);
  private readonly requestBytesByOp = new Array<number>(256).fill(0);

  request(op: number, bodyBytes: number): void {
    this.requests++;
    this.requestsByOp[op & 0xff]++;
    this.requestBytesByOp[op & 0xff] += bodyBytes;
  }

  refusal(code: string): void {
    this.refusals[code] = (this.refusals[code] ?? 0) + 1;
  }

  limitHit(limit: string): void {
    this.limitHits[limit] = (this.limitHits[limit] ?? 0) + 1;
  }

  /** `opName` names an opcode for the snapshot; `now` the figures the server reads live. */
  snapshot(opName: (op: number) => string, now: { connectionsOpen: number; bufferedBytes: number }): ServerStats {
    const requestsByOp: Record<string, number> = {};
    const requestBytesByOp: Record<string, number> = {};
    this.requestsByOp.forEach((count, op) => {
      if (count === 0) return;
      requestsByOp[opName(op)] = count;
      requestBytesByOp[opName(op)] = this.requestBytesByOp[op];
    });
    return {
      connectionsAccepted: this.connectionsAccepted,
      connectionsOpen: now.connectionsOpen,
      requests: this.requests,
      requestsByOp,
      requestBytesByOp,
      refusals: { ...this.refusals },
      limitHits: { ...this.limitHits },
      bufferedBytes: now.bufferedBytes,
      usersReloads: this.usersReloads,
      usersReloadFailures: this.usersReloadFailures,
    };
  }
}
