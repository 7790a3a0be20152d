/**
 * A read-only Region over one region's extent in a PMU file, read with pread on a descriptor
 * opened O_RDONLY: no lock, no mapping, so it works while a server holds the file (its
 * MAP_SHARED writes are in the same page cache pread reads). Anything but a read is refused.
 */
import * as fs from 'node:fs';
import { PmuError } from '../unit/errors';
import { capabilitiesOf } from '../unit/durability';
import { Region, RegionContext } from '../unit/region';

export class FileRegion implements Region {
  /** Read-only: it gives no durability level, and every write is refused. */
  readonly capabilities = capabilitiesOf('FileRegion');
  readonly context: RegionContext;

  constructor(
    private readonly fd: number,
    readonly name: string,
    private readonly fileOffset: number,
    readonly size: number,
    handle = 0,
    base = 0,
  ) {
    this.context = Object.freeze({ name, handle, base, size, rights: 'r' as const });
  }

  async read(offset: number, length: number): Promise<Buffer> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || length > this.size - offset) {
      throw new PmuError('EBOUNDS', `read of ${length} bytes at offset ${offset} is outside region '${this.name}' (${this.size} bytes)`);
    }
    const target = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const got = fs.readSync(this.fd, target, done, length - done, this.fileOffset + offset + done);
      if (got === 0) throw new PmuError('ECORRUPT', `region '${this.name}' ends past the end of the file (read at file offset ${this.fileOffset + offset + done}): the file is truncated`);
      done += got;
    }
    return target;
  }

  write(): Promise<void> {
    return Promise.reject(this.readOnly('write'));
  }

  flush(): Promise<void> {
    return Promise.reject(this.readOnly('flush'));
  }

  compareAndSwap(): Promise<bigint> {
    return Promise.reject(this.readOnly('compareAndSwap'));
  }

  private readOnly(what: string): PmuError {
    return new PmuError('EACCESS', `${what} on region '${this.name}': this view of the file is read-only`);
  }
}
