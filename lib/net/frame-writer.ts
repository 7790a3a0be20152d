/**
 * Puts frames on a socket with the least latency for a lone frame and the fewest syscalls for
 * a burst. The first frame written in a turn of the event loop goes out at once (one buffer,
 * one write); any more frames in the same turn are corked and leave together in one writev
 * when the turn ends (process.nextTick), e.g. pipelined requests or a group commit's acks.
 */
import * as net from 'node:net';
import { HEADER_BYTES, SMALL_FRAME_BYTES, writeHeader } from './protocol';

export class FrameWriter {
  private busyThisTurn = false;
  private corked = false;

  constructor(private readonly socket: net.Socket) {}

  /** Writes header + parts. The parts must not change until the socket has sent them. */
  write(op: number, flags: number, requestId: number, parts: readonly Uint8Array[]): void {
    let bodyLength = 0;
    for (const part of parts) bodyLength += part.length;
    if (this.busyThisTurn && !this.corked) {
      this.corked = true;
      this.socket.cork();
    }
    if (!this.busyThisTurn) {
      this.busyThisTurn = true;
      process.nextTick(() => this.endTurn());
    }
    if (HEADER_BYTES + bodyLength <= SMALL_FRAME_BYTES) {
      const frame = Buffer.allocUnsafe(HEADER_BYTES + bodyLength);
      writeHeader(frame, op, flags, requestId, bodyLength);
      let at = HEADER_BYTES;
      for (const part of parts) {
        frame.set(part, at);
        at += part.length;
      }
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
    if (corkedHere) this.socket.uncork();
  }

  private endTurn(): void {
    this.busyThisTurn = false;
    if (this.corked) {
      this.corked = false;
      this.socket.uncork();
    }
  }
}
