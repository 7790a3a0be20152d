/**
 * Whether one connection alone has been sending frames lately. A server flushes a lone durable
 * write inline (GroupCommit's 'auto') only then: the writer saves the libuv pool's two thread
 * wake-ups, and nobody else is kept waiting for its msync, except a connection whose first
 * frame in `windowMs` arrives during that one msync.
 */
import { performance } from 'node:perf_hooks';

/** How long another connection's last frame keeps lone flushes on the pool. */
export const SOLE_SENDER_WINDOW_MS = 5;

export class SoleSender {
  private last: object | undefined;
  /** When a frame last came from another connection than the frame before it. */
  private switchedAt = -Infinity;

  constructor(private readonly windowMs = SOLE_SENDER_WINDOW_MS) {}

  /** Called for every frame received; reads the clock only when the sender changes. */
  note(sender: object): void {
    if (sender === this.last) return;
    this.last = sender;
    this.switchedAt = performance.now();
  }

  /** The sender is gone: its frames no longer count as someone else's. */
  forget(sender: object): void {
    if (sender === this.last) this.last = undefined;
  }

  /** True when every frame of the last windowMs came from one connection. */
  alone(): boolean {
    return performance.now() - this.switchedAt >= this.windowMs;
  }
}
