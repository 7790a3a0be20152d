'use strict';
// A framed request/ack client for the echo peer: sequential round trips (latency) and a
// window of requests in flight (throughput). The floor any network PMU write has to beat.
// By default it reads with 'data' events, the way most Node clients read. { onread: true }
// reads into one reused buffer instead (net's onread option, as pmu's own client does): the
// floor for a client that skips the readable stream, shown beside the first.
const net = require('node:net');

function connect(target, onread) {
  return new Promise((resolve, reject) => {
    const options = typeof target === 'string' ? { path: target } : { port: target.port, host: '127.0.0.1' };
    if (onread) options.onread = onread;
    const socket = net.connect(options);
    socket.setNoDelay(true);
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

class PingPong {
  constructor(socket) {
    this.socket = socket;
    this.waiting = [];
    this.acked = 0;
    if (socket === undefined) return; // onread: open() wires the callback
    socket.on('data', (chunk) => {
      this.acked += chunk.length;
      while (this.acked >= 8 && this.waiting.length > 0) {
        this.acked -= 8;
        this.waiting.shift()();
      }
    });
  }

  static async open(target, { onread = false } = {}) {
    if (!onread) return new PingPong(await connect(target));
    const pingPong = new PingPong(undefined);
    const callback = (bytes) => {
      pingPong.acked += bytes;
      while (pingPong.acked >= 8 && pingPong.waiting.length > 0) {
        pingPong.acked -= 8;
        pingPong.waiting.shift()();
      }
      return true;
    };
    pingPong.socket = await connect(target, { buffer: Buffer.allocUnsafe(64 * 1024), callback });
    return pingPong;
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
