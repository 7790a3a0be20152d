/**
 * Whether a writer may still write. The first failure of a write that may have left a hole
 * (the write was refused, or its flush failed) is final: everything after it fails with the
 * same error, in particular EFENCED once the PMU refused this writer because another took over.
 */
import { isPmuError, PmuError } from '../unit/errors';

export class WriterHealth {
  private firstFailure: unknown;
  private closed = false;

  constructor(private readonly regionName: string) {}

  get failure(): unknown {
    return this.firstFailure;
  }

  get fenced(): boolean {
    return isPmuError(this.firstFailure, 'EFENCED');
  }

  fail(error: unknown): void {
    if (this.firstFailure !== undefined) return;
    this.firstFailure = isPmuError(error, 'EFENCED')
      ? new PmuError('EFENCED', `writer of region '${this.regionName}' was fenced: another writer took over (the epoch changed); this process must stop acting as primary`, { cause: error })
      : error;
  }

  markClosed(): void {
    this.closed = true;
  }

  assertUsable(): void {
    if (this.firstFailure !== undefined) throw this.firstFailure;
    if (this.closed) throw new PmuError('ECLOSED', `the checkpoint writer of region '${this.regionName}' is closed`);
  }
}
