/**
 * What the saver writes into its log: a record is a list of entries, and the saver's state is
 * what applying every entry in log order gives. A `put` is one record (the blobs of the
 * channels in `newVersions`, then the checkpoint itself), a `putWrites` one record, a
 * `deleteThread` one record; a snapshot record lists the whole live state as entries.
 *
 * Binary, little-endian: a kind byte, then its fields. Strings are a u32 byte length and
 * UTF-8; byte strings a u32 length and the bytes. A channel version is a tag byte (0 number as
 * f64, 1 string) and the value. Values stay as the serializer produced them.
 */
import { PmuError } from '../unit/errors.js';
import { frameBytes, RECORD_HEADER_BYTES, RecordFrame } from '../checkpoint/index.js';

export type ChannelVersion = number | string;

export interface CheckpointEntry {
  kind: 'checkpoint';
  thread: string;
  ns: string;
  id: string;
  /** The checkpoint this one was made from ('' for none). */
  parentId: string;
  /** Serializer type tag and bytes of the checkpoint without its channel_values. */
  type: string;
  checkpoint: Uint8Array;
  metadataType: string;
  metadata: Uint8Array;
}

export interface BlobEntry {
  kind: 'blob';
  thread: string;
  ns: string;
  channel: string;
  version: ChannelVersion;
  type: string;
  value: Uint8Array;
}

export interface WriteEntry {
  kind: 'write';
  thread: string;
  ns: string;
  checkpointId: string;
  taskId: string;
  taskPath: string;
  idx: number;
  channel: string;
  type: string;
  value: Uint8Array;
}

export interface DeleteEntry {
  kind: 'delete';
  thread: string;
}

export type Entry = CheckpointEntry | BlobEntry | WriteEntry | DeleteEntry;

const KIND_CHECKPOINT = 1;
const KIND_BLOB = 2;
const KIND_WRITE = 3;
const KIND_DELETE = 4;
const VERSION_NUMBER = 0;
const VERSION_STRING = 1;
/** Strings up to this many UTF-16 units try the ASCII fast path. */
const SHORT_STRING = 128;

/**
 * A growable buffer that builds a record frame: the payload starts after room for the record
 * header, so the checkpoint writer seals and writes it in place (no second copy). One
 * allocation per doubling, none with a good size hint.
 */
class ByteWriter {
  private buffer: Buffer;
  private length = RECORD_HEADER_BYTES;

  constructor(sizeHint: number) {
    this.buffer = Buffer.allocUnsafe(frameBytes(Math.max(256, sizeHint)));
  }

  private ensure(more: number): void {
    if (this.length + more <= this.buffer.length) return;
    let size = this.buffer.length * 2;
    while (size < this.length + more) size *= 2;
    const bigger = Buffer.allocUnsafe(size);
    this.buffer.copy(bigger, 0, 0, this.length);
    this.buffer = bigger;
  }

  u8(value: number): void {
    this.ensure(1);
    this.buffer[this.length++] = value;
  }

  u32(value: number): void {
    this.ensure(4);
    this.buffer.writeUInt32LE(value, this.length);
    this.length += 4;
  }

  i32(value: number): void {
    this.ensure(4);
    this.buffer.writeInt32LE(value, this.length);
    this.length += 4;
  }

  f64(value: number): void {
    this.ensure(8);
    this.buffer.writeDoubleLE(value, this.length);
    this.length += 8;
  }

  string(value: string): void {
    // Ids, channels and type tags are short ASCII: a plain loop beats two calls into C++.
    if (value.length <= SHORT_STRING) {
      this.ensure(4 + value.length);
      const buffer = this.buffer;
      const start = this.length + 4;
      let i = 0;
      for (; i < value.length; i++) {
        const code = value.charCodeAt(i);
        if (code >= 0x80) break;
        buffer[start + i] = code;
      }
      if (i === value.length) {
        buffer.writeUInt32LE(i, this.length);
        this.length = start + i;
        return;
      }
    }
    const bytes = Buffer.byteLength(value, 'utf8');
    this.u32(bytes);
    this.ensure(bytes);
    this.length += this.buffer.write(value, this.length, bytes, 'utf8');
  }

  bytes(value: Uint8Array): void {
    this.u32(value.length);
    this.ensure(value.length);
    this.buffer.set(value, this.length);
    this.length += value.length;
  }

  version(value: ChannelVersion): void {
    if (typeof value === 'number') {
      this.u8(VERSION_NUMBER);
      this.f64(value);
    } else {
      this.u8(VERSION_STRING);
      this.string(value);
    }
  }

  finish(): RecordFrame {
    const length = this.length - RECORD_HEADER_BYTES;
    this.ensure(frameBytes(length) - this.length);
    return { buffer: this.buffer, length };
  }
}

/** The entries as a record frame (see ByteWriter); its payload is what decodeEntries reads. */
export function encodeEntries(entries: Iterable<Entry>, sizeHint = 1024): RecordFrame {
  const out = new ByteWriter(sizeHint);
  for (const entry of entries) {
    switch (entry.kind) {
      case 'checkpoint':
        out.u8(KIND_CHECKPOINT);
        out.string(entry.thread);
        out.string(entry.ns);
        out.string(entry.id);
        out.string(entry.parentId);
        out.string(entry.type);
        out.bytes(entry.checkpoint);
        out.string(entry.metadataType);
        out.bytes(entry.metadata);
        break;
      case 'blob':
        out.u8(KIND_BLOB);
        out.string(entry.thread);
        out.string(entry.ns);
        out.string(entry.channel);
        out.version(entry.version);
        out.string(entry.type);
        out.bytes(entry.value);
        break;
      case 'write':
        out.u8(KIND_WRITE);
        out.string(entry.thread);
        out.string(entry.ns);
        out.string(entry.checkpointId);
        out.string(entry.taskId);
        out.string(entry.taskPath);
        out.i32(entry.idx);
        out.string(entry.channel);
        out.string(entry.type);
        out.bytes(entry.value);
        break;
      case 'delete':
        out.u8(KIND_DELETE);
        out.string(entry.thread);
        break;
    }
  }
  return out.finish();
}

/** A size that holds `entries` in the common case (ASCII ids): their values plus the fields. */
export function sizeHint(entries: readonly Entry[]): number {
  let bytes = 0;
  for (const entry of entries) {
    bytes += 128;
    if (entry.kind === 'checkpoint') bytes += entry.checkpoint.length + entry.metadata.length + entry.id.length + entry.parentId.length + entry.thread.length + entry.ns.length;
    else if (entry.kind !== 'delete') bytes += entry.value.length + entry.thread.length + entry.ns.length + entry.channel.length;
  }
  return bytes;
}

/**
 * Decodes a record's payload. The record passed its CRC, so a payload that does not parse was
 * written by something else than this saver: ECORRUPT, never a guess. Byte strings are views
 * into `payload` (the checkpoint layer hands out a copy per record).
 */
export function decodeEntries(payload: Buffer, where: string): Entry[] {
  const entries: Entry[] = [];
  let at = 0;
  const need = (bytes: number): void => {
    if (at + bytes > payload.length) throw new PmuError('ECORRUPT', `${where}: a saver entry runs past the end of its record (byte ${at} of ${payload.length}); this region does not hold a pmu/langgraph log`);
  };
  const u8 = (): number => {
    need(1);
    return payload[at++];
  };
  const u32 = (): number => {
    need(4);
    const value = payload.readUInt32LE(at);
    at += 4;
    return value;
  };
  const i32 = (): number => {
    need(4);
    const value = payload.readInt32LE(at);
    at += 4;
    return value;
  };
  const string = (): string => {
    const length = u32();
    need(length);
    const value = payload.toString('utf8', at, at + length);
    at += length;
    return value;
  };
  const bytes = (): Buffer => {
    const length = u32();
    need(length);
    const value = payload.subarray(at, at + length);
    at += length;
    return value;
  };
  const version = (): ChannelVersion => {
    const tag = u8();
    if (tag === VERSION_NUMBER) {
      need(8);
      const value = payload.readDoubleLE(at);
      at += 8;
      return value;
    }
    if (tag === VERSION_STRING) return string();
    throw new PmuError('ECORRUPT', `${where}: unknown channel version tag ${tag}; this region does not hold a pmu/langgraph log`);
  };
  while (at < payload.length) {
    const kind = u8();
    switch (kind) {
      case KIND_CHECKPOINT:
        entries.push({ kind: 'checkpoint', thread: string(), ns: string(), id: string(), parentId: string(), type: string(), checkpoint: bytes(), metadataType: string(), metadata: bytes() });
        break;
      case KIND_BLOB:
        entries.push({ kind: 'blob', thread: string(), ns: string(), channel: string(), version: version(), type: string(), value: bytes() });
        break;
      case KIND_WRITE:
        entries.push({ kind: 'write', thread: string(), ns: string(), checkpointId: string(), taskId: string(), taskPath: string(), idx: i32(), channel: string(), type: string(), value: bytes() });
        break;
      case KIND_DELETE:
        entries.push({ kind: 'delete', thread: string() });
        break;
      default:
        throw new PmuError('ECORRUPT', `${where}: unknown saver entry kind ${kind} at byte ${at - 1}; this region does not hold a pmu/langgraph log`);
    }
  }
  return entries;
}
