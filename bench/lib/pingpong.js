'use strict';
// A framed request/ack client for the echo peer: sequential round trips (latency) and a
// window of requests in flight (throughput). The floor any network PMU write has to beat.
// By default it reads with 'data' events, the way most Node clients read. { onread: true }
// reads into one reused buffer instead (net's onread option, as pmu's own client does): the
// floor for a client that skips the readable stream, shown beside the first.
const net = require('node:net');

function connect(target, onAcks) {
  return new Promise((resolve, reject) => {
    const options = typeof target === 'string' ? { path: target } : { port: target.port, host: '127.0.0.1' };
    if (onAcks.onread) options.onread = { buffer: Buffer.allocUnsafe(64 * 1024), callback: (bytes) => (onAcks(bytes), true) };
    const socket = net.connect(options);
    socket.setNoDelay(true);
    if (!onAcks.onread) socket.on('data', (chunk) => onAcks(chunk.length));
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

class PingPong {
  constructor() {
    this.waiting = [];
    this.acked = 0;
    this.socket = undefined;
  }

  static async open(target, { onread = false } = {}) {
    const pingPong = new PingPong();
    const onAcks = (bytes) => pingPong.received(bytes);
    onAcks.onread = onread;
    pingPong.socket = await connect(target, onAcks);
    return pingPong;
  }

  received(bytes) {
    this.acked += bytes;
    while (this.acked >= 8 && this.waiting.length > 0) {
      this.acked -= 8;
      this.waiting.shift()();
    }
  }

  send(frame) {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.socket.write(frame);
    });
  }

  close() {
    this.socket.destroy();
  }
}

function frameOf(size) {
  const frame = Buffer.alloc(4 + size, 0x5a);
  frame.writeUInt32LE(size, 0);
  return frame;
}

module.exports = { PingPong, frameOf };
