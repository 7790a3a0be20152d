/**
 * Puts frames on a socket with the least latency for a lone frame and the fewest syscalls for
 * a burst. The first frame written in a turn of the event loop goes out at once (one buffer,
 * one write); any more frames in the same turn are corked and leave together in one writev
 * when the turn ends (process.nextTick), e.g. pipelined requests or a group commit's acks.
 * A caller that knows where its burst ends (the server, answering the requests of one chunk
 * it read) brackets it with beginBatch/endBatch instead: the same grouping, without a tick
 * scheduled for every reply. A client marks its reads instead (newTurn), so that a lone
 * request after a reply schedules no tick either.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { HEADER_BYTES, SMALL_FRAME_BYTES, writeHeader } from './protocol';
import { FrameSeal, TAG_BYTES } from './seal';

export class FrameWriter {
  private busyThisTurn = false;
  private corked = false;
  private batching = false;
  private tickPending = false;
  /**
   * One buffer for lone small frames. It is used only when the socket has nothing queued
   * (writableLength 0): then every earlier frame, the last use of this buffer included, has
   * been handed to the kernel, and nothing refers to it any more. A 4 KiB write's frame is
   * past Node's pooled size, so without this every request allocated, and later collected,
   * an ArrayBuffer of its own. Not for TLS, whose socket may keep a chunk past write().
   */
  private scratch: Buffer | undefined;
  private scratchView: Buffer | undefined;
  private readonly reuse: boolean;
  /** Set once a sealed handshake is done: every frame after it ends with its tag (seal.ts). */
  seal: FrameSeal | undefined;
  /** Made once: a closure per frame for the end-of-turn tick was garbage on every request. */
  private readonly endTurnNow = (): void => {
    this.tickPending = false;
    if (!this.batching) this.endTurn();
  };

  /**
   * `turnsMarkedByReads`: the owner calls newTurn() whenever it reads from the socket (a client,
   * whose next request usually follows a reply). Then the first frame after a read schedules no
   * end-of-turn tick, which cost a sequential writer a tick per request; only a second frame
   * before the next read corks and schedules one.
   */
  constructor(
    private readonly socket: net.Socket,
    private readonly turnsMarkedByReads = false,
  ) {
    this.reuse = !(socket instanceof tls.TLSSocket);
  }

  /** A read callback began: a new turn of the event loop (with turnsMarkedByReads). */
  newTurn(): void {
    if (!this.tickPending && !this.corked && !this.batching) this.busyThisTurn = false;
  }

  /** Writes header + parts. The parts must not change until the socket has sent them. */
  write(op: number, flags: number, requestId: number, parts: readonly Uint8Array[]): void {
    const seal = this.seal;
    let bodyLength = seal ? TAG_BYTES : 0;
    for (const part of parts) bodyLength += part.length;
    this.startFrame();
    if (HEADER_BYTES + bodyLength <= SMALL_FRAME_BYTES) {
      const useScratch = this.reuse && !this.corked && this.socket.writableLength === 0;
      const frame = useScratch ? this.takeScratch(HEADER_BYTES + bodyLength) : Buffer.allocUnsafe(HEADER_BYTES + bodyLength);
      writeHeader(frame, op, flags, requestId, bodyLength);
      let at = HEADER_BYTES;
      for (const part of parts) {
        frame.set(part, at);
        at += part.length;
      }
      if (seal) frame.set(seal.next([frame.subarray(0, at)]), at);
      this.socket.write(frame);
      return;
    }
    // A large frame: no copy of the payload; its pieces leave in one writev.
    const header = Buffer.allocUnsafe(HEADER_BYTES);
    writeHeader(header, op, flags, requestId, bodyLength);
    const corkedHere = !this.corked;
    if (corkedHere) this.socket.cork();
    this.socket.write(header);
    for (const part of parts) if (part.length > 0) this.socket.write(part);
    if (seal) this.socket.write(seal.next([header, ...parts]));
    if (corkedHere) this.socket.uncork();
  }

  /**
   * Writes a frame whose body `fill` produces in place (a READ reply: the region copies
   * straight into the outgoing frame, with no intermediate buffer). If `fill` throws, nothing
   * was written.
   */
  writeFilled(op: number, flags: number, requestId: number, bodyLength: number, fill: (body: Buffer) => void): void {
    const tagBytes = this.seal ? TAG_BYTES : 0;
    if (HEADER_BYTES + bodyLength + tagBytes > SMALL_FRAME_BYTES) {
      const body = Buffer.allocUnsafe(bodyLength);
      fill(body);
      this.write(op, flags, requestId, [body]);
      return;
    }
    const frame = Buffer.allocUnsafe(HEADER_BYTES + bodyLength + tagBytes);
    fill(frame.subarray(HEADER_BYTES, HEADER_BYTES + bodyLength));
    writeHeader(frame, op, flags, requestId, bodyLength + tagBytes);
    if (this.seal) frame.set(this.seal.next([frame.subarray(0, HEADER_BYTES + bodyLength)]), HEADER_BYTES + bodyLength);
    this.startFrame();
    this.socket.write(frame);
  }

  private takeScratch(length: number): Buffer {
    if (this.scratch === undefined) this.scratch = Buffer.allocUnsafeSlow(SMALL_FRAME_BYTES);
    // Frames of one length follow each other (a reply to every 'mapped' write, a client's
    // same-sized writes): the view of the last length is kept rather than made per frame.
    if (this.scratchView === undefined || this.scratchView.length !== length) this.scratchView = this.scratch.subarray(0, length);
    return this.scratchView;
  }

  /** Frames written from here to endBatch() (synchronously) leave as one burst would. */
  beginBatch(): void {
    this.batching = true;
  }

  endBatch(): void {
    this.batching = false;
    // A tick scheduled before the batch began ends the turn itself.
    if (!this.tickPending) this.endTurn();
  }

  /** Corks the socket for every frame after the first of this turn (or batch). */
  private startFrame(): void {
    if (!this.busyThisTurn) {
      this.busyThisTurn = true;
      if (!this.turnsMarkedByReads) this.endTurnLater();
      return;
    }
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
    }
    if (this.turnsMarkedByReads) this.endTurnLater();
  }

  private endTurnLater(): void {
    if (this.batching || this.tickPending) return;
    this.tickPending = true;
    process.nextTick(this.endTurnNow);
  }

  private endTurn(): void {
    this.tickPending = false;
    this.busyThisTurn = false;
    if (this.corked) {
      this.corked = false;
      this.socket.uncork();
    }
  }
}
