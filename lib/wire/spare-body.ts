/**
 * One buffer, kept by the server, in which a large request body arriving in pieces is
 * assembled, then reused for the next. A fresh buffer per large WRITE cost the server more
 * than the copy itself: every page of it faulted in and zeroed by the kernel, and unmapped
 * again when collected (a 16 MiB WRITE: 4,096 page faults, about half the server's CPU for it).
 *
 * One connection at a time holds it (others allocate as before, so a client that sends half a
 * body and stalls costs the rest nothing but this saving), from the body's first piece until
 * the call that hands it on returns: the server's request handlers copy what they keep before
 * returning. What it retains is bounded by the largest body admitted, at most the frame limit.
 */
export class SpareBody {
  /** Bodies shorter than this are allocated as before: their pages are few and Node pools the small ones. */
  static readonly MIN_BYTES = 256 * 1024;
  private spare: Buffer | undefined;
  private inUse = false;

  /** A buffer of exactly `length` bytes for the body; give() it back once handed on. */
  take(length: number): Buffer {
    if (length < SpareBody.MIN_BYTES || this.inUse) return Buffer.allocUnsafe(length);
    if (this.spare === undefined || this.spare.length < length) this.spare = Buffer.allocUnsafeSlow(length);
    this.inUse = true;
    return this.spare.subarray(0, length);
  }

  /** Returns a buffer from take(); one that is not the spare's is simply dropped. */
  give(body: Buffer): void {
    if (this.spare !== undefined && body.buffer === this.spare.buffer) this.inUse = false;
  }

  /** Whether `body` is (a view of) the spare: such a body must not outlive the handing-on call. */
  owns(body: Buffer): boolean {
    return this.spare !== undefined && body.buffer === this.spare.buffer;
  }
}
