/**
 * Pool work of a unit other than group commit (checksums, region creates): counted while it runs, so close()
 * can wait for it. The addon refuses to close (EBUSY) while a worker is in flight, because the
 * worker reads the mapping.
 */
export class InFlight {
  private count = 0;
  private idleWaiters: Array<() => void> = [];

  get busy(): boolean {
    return this.count > 0;
  }

  /** Counts `work` until it settles; returns it. */
  track<T>(work: Promise<T>): Promise<T> {
    this.count++;
    const done = () => {
      if (--this.count === 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const resolve of waiters) resolve();
      }
    };
    work.then(done, done);
    return work;
  }

  /** Resolves when nothing is in flight. */
  idle(): Promise<void> {
    if (this.count === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}
