'use strict';
// A framed request/ack client for the echo peer: sequential round trips (latency) and a
// window of requests in flight (throughput). The floor any network PMU write has to beat.
const net = require('node:net');

function connect(target) {
  return new Promise((resolve, reject) => {
    const socket = typeof target === 'string' ? net.connect(target) : net.connect(target.port, '127.0.0.1');
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
    socket.on('data', (chunk) => {
      this.acked += chunk.length;
      while (this.acked >= 8 && this.waiting.length > 0) {
        this.acked -= 8;
        this.waiting.shift()();
      }
    });
  }

  static async open(target) {
    return new PingPong(await connect(target));
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
