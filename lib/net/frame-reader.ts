/**
 * Splits a byte stream into frames. A frame whose bytes arrived in one chunk is handed on as
 * a subarray of that chunk (no copy: a WRITE's payload goes from the socket's buffer straight
 * into the mapping); a frame split across chunks is assembled once into a buffer of exactly
 * its size, allocated only after its header passed the size check.
 *
 * The body handed to `onFrame` is valid only during the call when it is a view of a chunk;
 * a consumer that keeps it must copy it.
 */
import { PmuErrorCode } from '../unit/errors';
import { decodeHeader, FrameHeader, HEADER_BYTES, OP_NAMES, PROTOCOL_VERSION } from './protocol';

export interface FrameSink {
  onFrame(header: FrameHeader, body: Buffer): void;
  /** The stream cannot be parsed any further (bad version, oversized frame); the reader stops. */
  onStreamError(code: PmuErrorCode, message: string, requestId: number): void;
}

export class FrameReader {
  private readonly headerScratch = Buffer.alloc(HEADER_BYTES);
  private headerFilled = 0;
  private pendingHeader: FrameHeader | undefined;
  private body: Buffer | undefined;
  private bodyFilled = 0;
  private stopped = false;
  private paused = false;
  private pushing = false;
  /** The unparsed rest of a chunk, kept while paused. */
  private held: Buffer | undefined;

  /** `maxBodyBytes` may be raised later (after authentication) with setMaxBodyBytes. */
  constructor(
    private readonly sink: FrameSink,
    private maxBodyBytes: number,
  ) {}

  setMaxBodyBytes(bytes: number): void {
    this.maxBodyBytes = bytes;
  }

  stop(): void {
    this.stopped = true;
    this.body = undefined;
    this.held = undefined;
  }

  /**
   * Stops handing on frames, even those already received in the current chunk; the rest is
   * kept (at most one chunk) until resume(). Pausing the socket alone is not enough: one 64 KiB
   * chunk can hold over a thousand small requests.
   */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    const held = this.held;
    this.held = undefined;
    // Called from inside push (a frame's handler resumed us): that loop simply continues.
    if (held && !this.pushing) this.push(held);
    else if (held) this.held = held;
  }

  /** True while part of a frame is buffered (for telling a truncated stream from a clean end). */
  get midFrame(): boolean {
    return this.headerFilled > 0 || this.body !== undefined;
  }

  push(chunk: Buffer): void {
    if (this.paused || this.held) {
      this.held = this.held ? Buffer.concat([this.held, chunk]) : chunk;
      if (this.paused) return;
      chunk = this.held;
      this.held = undefined;
    }
    this.pushing = true;
    try {
      this.consume(chunk);
    } finally {
      this.pushing = false;
    }
  }

  private consume(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length && !this.stopped) {
      if (this.paused) {
        this.held = chunk.subarray(at);
        return;
      }
      if (this.body && this.pendingHeader) {
        const take = Math.min(chunk.length - at, this.body.length - this.bodyFilled);
        chunk.copy(this.body, this.bodyFilled, at, at + take);
        this.bodyFilled += take;
        at += take;
        if (this.bodyFilled === this.body.length) {
          const header = this.pendingHeader;
          const body = this.body;
          this.body = undefined;
          this.pendingHeader = undefined;
          this.sink.onFrame(header, body);
        }
        continue;
      }

      let header: FrameHeader;
      if (this.headerFilled > 0 || chunk.length - at < HEADER_BYTES) {
        const take = Math.min(chunk.length - at, HEADER_BYTES - this.headerFilled);
        chunk.copy(this.headerScratch, this.headerFilled, at, at + take);
        this.headerFilled += take;
        at += take;
        if (this.headerFilled < HEADER_BYTES) return;
        this.headerFilled = 0;
        header = decodeHeader(this.headerScratch, 0);
      } else {
        header = decodeHeader(chunk, at);
        at += HEADER_BYTES;
      }

      if (header.version !== PROTOCOL_VERSION) {
        this.stop();
        this.sink.onStreamError('EPROTO', `frame with protocol version ${header.version}; this peer speaks version ${PROTOCOL_VERSION}`, header.requestId);
        return;
      }
      if (header.bodyLength > this.maxBodyBytes) {
        this.stop();
        const op = OP_NAMES[header.op] ?? `opcode 0x${header.op.toString(16)}`;
        this.sink.onStreamError('EFRAMETOOBIG', `${op} frame of ${header.bodyLength} bytes exceeds the limit of ${this.maxBodyBytes} bytes`, header.requestId);
        return;
      }
      if (chunk.length - at >= header.bodyLength) {
        const body = chunk.subarray(at, at + header.bodyLength);
        at += header.bodyLength;
        this.sink.onFrame(header, body);
      } else {
        this.pendingHeader = header;
        this.body = Buffer.allocUnsafe(header.bodyLength);
        this.bodyFilled = 0;
      }
    }
  }
}
