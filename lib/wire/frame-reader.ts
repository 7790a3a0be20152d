/**
 * Splits a byte stream into frames. A frame whose bytes arrived in one chunk is handed on as
 * a subarray of that chunk (no copy: a WRITE's payload goes from the socket's buffer straight
 * into the mapping). A frame split across chunks is assembled once into a buffer of exactly its
 * size, each piece copied in as it arrives. Before that buffer is made, the sink may look at the
 * body's first bytes and refuse it (admitBody): the rest of that body is then read and
 * discarded, and the stream stays in step. The buffer is allocated unfilled, so its pages
 * become resident only as bytes arrive: memory grows with the bytes received, and the sink is
 * told of each piece (bodyPiece) so its budget counts those bytes, not what a header claims.
 *
 * The body handed to `onFrame` is valid only during the call when it is a view of a chunk
 * (`owned` false); a consumer that keeps it must copy it. With `transientChunks` the caller
 * reuses each chunk's memory once push returns (a socket's onread buffer): whatever the reader
 * keeps across pushes (the rest of a chunk while paused, pieces of a body before admission) it
 * copies first.
 *
 * A sealed reader (setSeal, once a sealed handshake is done) checks every frame's tag
 * (seal.ts) before the sink sees the frame: a frame whose tag fails stops the reader with
 * EAUTH, so nothing altered or injected is ever acted on. The sink sees the body without its
 * tag, and a header whose bodyLength excludes it. A refused body that is skipped is still
 * checked: a relay cannot hide a frame behind a refusal.
 */
import { PmuErrorCode } from '../unit/errors';
import { decodeHeader, FrameHeader, HEADER_BYTES, OP_NAMES, PROTOCOL_VERSION } from './protocol';
import { FrameSeal, TagStream, TAG_BYTES, tagsMatch } from './seal';
import type { SpareBody } from './spare-body';

export interface FrameSink {
  /** `owned`: the body is a buffer of its own (kept as long as the sink likes), not a view of a chunk. */
  onFrame(header: FrameHeader, body: Buffer, owned: boolean): void;
  /** The stream cannot be parsed any further (bad version, oversized frame); the reader stops. */
  onStreamError(code: PmuErrorCode, message: string, requestId: number): void;
  /**
   * For a body that did not arrive whole: how many of its first bytes admitBody needs to see
   * (0: decide from the header). Only consulted when admitBody is given.
   */
  admissionPrefixBytes?(header: FrameHeader): number;
  /**
   * Decides whether to buffer a split body, from its header and first bytes. False: the sink
   * has answered the request; the reader discards the body. The sink may reserve budget here;
   * releaseBody is called exactly once for every admitted body (complete, or abandoned by stop()).
   */
  admitBody?(header: FrameHeader, prefix: Buffer): boolean;
  /**
   * `bytes` more of an admitted split body arrived (at admission: all received so far), so a
   * budget can count what is held rather than what the header claims. False: the sink has
   * answered the request; the reader discards the rest of the body (releaseBody still follows).
   */
  bodyPiece?(header: FrameHeader, bytes: number): boolean;
  releaseBody?(header: FrameHeader): void;
}

export class FrameReader {
  private readonly headerScratch = Buffer.alloc(HEADER_BYTES);
  private headerFilled = 0;
  private pendingHeader: FrameHeader | undefined;
  /** The split body being assembled, once admitted. */
  private body: Buffer | undefined;
  /** Before admission: the pieces received so far (views of socket chunks, which are never reused). */
  private parts: Buffer[] = [];
  private bodyFilled = 0;
  /** Whether the sink has admitted the pending body (undefined: not asked yet). */
  private admitted: boolean | undefined;
  /** Bytes of a refused body still to be read and dropped. */
  private skipping = 0;
  private stopped = false;
  private paused = false;
  private pushing = false;
  /** The unparsed rest of a chunk, kept while paused. */
  private held: Buffer | undefined;
  private seal: FrameSeal | undefined;
  /** A sealed frame arriving in pieces: its tag so far, computed as its bytes arrive. */
  private tagStream: TagStream | undefined;
  /** Its body once complete, held until its tag has arrived and matched (undefined: skipped). */
  private sealed: { header: FrameHeader; body: Buffer | undefined; admitted: boolean; owned: boolean } | undefined;
  private readonly tagScratch = Buffer.alloc(TAG_BYTES);
  /** Bytes of the tag still to come (0: not waiting for one). */
  private tagWanted = 0;

  /**
   * `maxBodyBytes` may be raised later (after authentication) with setMaxBodyBytes. `spare`:
   * where large split bodies are assembled (spare-body.ts); such a body is handed on with
   * `owned` false, valid only during the call.
   */
  constructor(
    private readonly sink: FrameSink,
    private maxBodyBytes: number,
    private readonly transientChunks = false,
    private readonly spare?: SpareBody,
  ) {}

  setMaxBodyBytes(bytes: number): void {
    this.maxBodyBytes = bytes;
  }

  /** Every frame from the next one on must carry a tag that `seal` accepts. */
  setSeal(seal: FrameSeal): void {
    this.seal = seal;
  }

  stop(): void {
    this.stopped = true;
    this.abandonBody();
    this.dropSealed();
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
    return this.headerFilled > 0 || this.pendingHeader !== undefined || this.skipping > 0 || this.tagWanted > 0;
  }

  push(chunk: Buffer): void {
    if (this.paused || this.held) {
      this.held = this.held ? Buffer.concat([this.held, chunk]) : this.keep(chunk);
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
        this.held = this.keep(chunk.subarray(at));
        return;
      }
      if (this.tagWanted > 0) {
        at = this.fillTag(chunk, at);
        continue;
      }
      if (this.skipping > 0) {
        const take = Math.min(chunk.length - at, this.skipping);
        this.tagStream?.update(chunk.subarray(at, at + take));
        this.skipping -= take;
        at += take;
        if (this.skipping === 0 && this.tagStream) this.awaitTag(undefined, undefined, false, false);
        continue;
      }
      if (this.pendingHeader) {
        at = this.fillBody(chunk, at);
        continue;
      }

      let header: FrameHeader;
      // Where the header's bytes are (-1: headerScratch), for a sealed frame's tag: a view per
      // frame would be an allocation on every unsealed request too.
      let headerAt: number;
      if (this.headerFilled > 0 || chunk.length - at < HEADER_BYTES) {
        const take = Math.min(chunk.length - at, HEADER_BYTES - this.headerFilled);
        chunk.copy(this.headerScratch, this.headerFilled, at, at + take);
        this.headerFilled += take;
        at += take;
        if (this.headerFilled < HEADER_BYTES) return;
        this.headerFilled = 0;
        header = decodeHeader(this.headerScratch, 0);
        headerAt = -1;
      } else {
        header = decodeHeader(chunk, at);
        headerAt = at;
        at += HEADER_BYTES;
      }

      if (header.version !== PROTOCOL_VERSION) {
        this.stop();
        this.sink.onStreamError('EPROTO', `frame with protocol version ${header.version}; this peer speaks version ${PROTOCOL_VERSION}`, header.requestId);
        return;
      }
      const seal = this.seal;
      if (seal) {
        if (header.bodyLength < TAG_BYTES) {
          this.stop();
          this.sink.onStreamError('EAUTH', `a frame of ${header.bodyLength} bytes in a sealed session, too short for its tag: the stream was altered on its way; reconnect`, header.requestId);
          return;
        }
        header.bodyLength -= TAG_BYTES;
      }
      if (header.bodyLength > this.maxBodyBytes) {
        this.stop();
        const op = OP_NAMES[header.op] ?? `opcode 0x${header.op.toString(16)}`;
        this.sink.onStreamError('EFRAMETOOBIG', `${op} frame of ${header.bodyLength} bytes exceeds the limit of ${this.maxBodyBytes} bytes`, header.requestId);
        return;
      }
      const tagBytes = seal ? TAG_BYTES : 0;
      if (chunk.length - at >= header.bodyLength + tagBytes) {
        const body = chunk.subarray(at, at + header.bodyLength);
        at += header.bodyLength;
        if (seal) {
          const tag = chunk.subarray(at, at + TAG_BYTES);
          at += TAG_BYTES;
          const expected = headerAt < 0 ? seal.next([this.headerScratch, body]) : seal.next([chunk.subarray(headerAt, at - TAG_BYTES)]);
          if (!tagsMatch(expected, tag)) return this.badTag(header);
        }
        this.sink.onFrame(header, body, false);
      } else if (seal && chunk.length - at >= header.bodyLength) {
        // The body is here, its tag is not: keep a copy of the body (at most one chunk) until it is.
        const body = Buffer.from(chunk.subarray(at, at + header.bodyLength));
        at += header.bodyLength;
        this.tagStream = seal.stream();
        this.tagStream.update(headerAt < 0 ? this.headerScratch : chunk.subarray(headerAt, headerAt + HEADER_BYTES));
        this.tagStream.update(body);
        this.awaitTag(header, body, false, true);
      } else {
        if (seal) {
          this.tagStream = seal.stream();
          this.tagStream.update(headerAt < 0 ? this.headerScratch : chunk.subarray(headerAt, headerAt + HEADER_BYTES));
        }
        this.pendingHeader = header;
        this.parts = [];
        this.bodyFilled = 0;
        this.admitted = this.sink.admitBody ? undefined : true;
        if (this.admitted === undefined && (this.sink.admissionPrefixBytes?.(header) ?? 0) === 0) this.decide(EMPTY);
        if (this.admitted) this.body = this.newBody(header.bodyLength);
        // A refused empty body: nothing to skip, only its tag.
        if ((this.admitted as boolean | undefined) === false && this.skipping === 0 && this.tagStream) this.awaitTag(undefined, undefined, false, false);
      }
    }
  }

  /** A sealed frame's body is complete (or skipped): wait for its tag before handing it on. */
  private awaitTag(header: FrameHeader | undefined, body: Buffer | undefined, admitted: boolean, owned: boolean): void {
    this.sealed = header ? { header, body, admitted, owned } : undefined;
    this.tagWanted = TAG_BYTES;
  }

  private fillTag(chunk: Buffer, at: number): number {
    const take = Math.min(chunk.length - at, this.tagWanted);
    chunk.copy(this.tagScratch, TAG_BYTES - this.tagWanted, at, at + take);
    this.tagWanted -= take;
    at += take;
    if (this.tagWanted > 0) return at;
    const expected = this.tagStream!.finish();
    this.tagStream = undefined;
    const sealed = this.sealed;
    this.sealed = undefined;
    if (!tagsMatch(expected, this.tagScratch)) {
      if (sealed) this.sealed = sealed; // released by stop()
      this.badTag(sealed?.header);
      return at;
    }
    if (sealed?.body) this.deliver(sealed.header, sealed.body, sealed.admitted, sealed.owned);
    return at;
  }

  private badTag(header: FrameHeader | undefined): void {
    this.stop();
    const op = header ? (OP_NAMES[header.op] ?? `opcode 0x${header.op.toString(16)}`) : 'a';
    this.sink.onStreamError('EAUTH', `${op} frame failed its seal check: something between the two ends altered, injected or replayed it; the connection is closed, reconnect (and find what relays this traffic)`, header?.requestId ?? 0);
  }

  /** Hands a completed split body on (and returns a spare buffer after the call). */
  private deliver(header: FrameHeader, body: Buffer, admitted: boolean, owned: boolean): void {
    if (admitted) this.sink.releaseBody?.(header);
    if (this.spare?.owns(body)) {
      try {
        this.sink.onFrame(header, body, false);
      } finally {
        this.spare.give(body);
      }
    } else {
      this.sink.onFrame(header, body, owned);
    }
  }

  private dropSealed(): void {
    const sealed = this.sealed;
    this.sealed = undefined;
    this.tagStream = undefined;
    this.tagWanted = 0;
    if (!sealed) return;
    if (sealed.body) this.spare?.give(sealed.body);
    if (sealed.admitted) this.sink.releaseBody?.(sealed.header);
  }

  /** Takes the pending body's bytes from `chunk` at `at`; returns the new position. */
  private fillBody(chunk: Buffer, at: number): number {
    const header = this.pendingHeader!;
    const take = Math.min(chunk.length - at, header.bodyLength - this.bodyFilled);
    this.tagStream?.update(chunk.subarray(at, at + take));
    if (this.body) chunk.copy(this.body, this.bodyFilled, at, at + take);
    else this.parts.push(this.keep(chunk.subarray(at, at + take)));
    this.bodyFilled += take;
    at += take;
    if (this.admitted === undefined) {
      const wanted = Math.min(header.bodyLength, this.sink.admissionPrefixBytes!(header));
      if (this.bodyFilled < wanted) return at;
      this.decide(this.joined(wanted));
      if (!this.admitted) return this.skippedWhole(at);
      if (!this.counted(this.bodyFilled)) return this.skippedWhole(at);
    } else if (!this.counted(take)) {
      return this.skippedWhole(at);
    }
    if (!this.body) {
      this.body = this.newBody(header.bodyLength);
      let filled = 0;
      for (const part of this.parts) filled += part.copy(this.body, filled);
      this.parts = [];
    }
    if (this.bodyFilled === header.bodyLength) {
      const body = this.body;
      this.body = undefined;
      this.pendingHeader = undefined;
      if (this.tagStream) this.awaitTag(header, body, true, !this.spare?.owns(body));
      else this.deliver(header, body, true, true);
    }
    return at;
  }

  /** A refused sealed body whose last byte has already arrived: its tag is next. */
  private skippedWhole(at: number): number {
    if (this.tagStream && this.skipping === 0 && !this.stopped) this.awaitTag(undefined, undefined, false, false);
    return at;
  }

  /** Tells the sink of `bytes` more of the admitted body; on refusal drops the body and skips its rest. */
  private counted(bytes: number): boolean {
    if (!this.sink.bodyPiece || bytes === 0) return true;
    const header = this.pendingHeader!;
    if (this.sink.bodyPiece(header, bytes)) return true;
    // The sink may have stopped the reader (which abandoned the body and released it already).
    if (this.stopped) return false;
    const rest = header.bodyLength - this.bodyFilled;
    this.abandonBody();
    this.skipping = rest;
    return false;
  }

  private newBody(length: number): Buffer {
    return this.spare ? this.spare.take(length) : Buffer.allocUnsafe(length);
  }

  /** `bytes` as it may be kept past this push: a copy when the caller reuses its chunks. */
  private keep(bytes: Buffer): Buffer {
    return this.transientChunks ? Buffer.from(bytes) : bytes;
  }

  private decide(prefix: Buffer): void {
    const header = this.pendingHeader!;
    this.admitted = this.sink.admitBody!(header, prefix);
    if (this.admitted || this.stopped) return;
    this.skipping = header.bodyLength - this.bodyFilled;
    this.pendingHeader = undefined;
    this.parts = [];
  }

  /** The first `length` bytes of the parts received before admission (a small prefix). */
  private joined(length: number): Buffer {
    if (this.parts.length === 1) return this.parts[0].subarray(0, length);
    const whole = Buffer.concat(this.parts, this.bodyFilled);
    this.parts = [whole];
    return whole.subarray(0, length);
  }

  private abandonBody(): void {
    const header = this.pendingHeader;
    this.pendingHeader = undefined;
    if (this.body) this.spare?.give(this.body);
    this.body = undefined;
    this.parts = [];
    this.skipping = 0;
    if (header && this.admitted) this.sink.releaseBody?.(header);
    this.admitted = undefined;
  }
}

const EMPTY = Buffer.alloc(0);
