'use strict';
// The Node ping-pong floor's far end: reads length-prefixed frames (u32 LE length + payload)
// and answers each with an 8-byte ack, the shape of a pmu WRITE and its reply, with no work
// in between. Usage: node echo-server.js tcp|unix [socketPath]
const net = require('node:net');

const [kind, socketPath] = process.argv.slice(2);
const ack = Buffer.alloc(8, 1);

const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  let pending = [];
  let buffered = 0;
  socket.on('data', (chunk) => {
    pending.push(chunk);
    buffered += chunk.length;
    let data = pending.length === 1 ? pending[0] : Buffer.concat(pending, buffered);
    let acks = 0;
    while (data.length >= 4) {
      const length = data.readUInt32LE(0);
      if (data.length < 4 + length) break;
      data = data.subarray(4 + length);
      acks++;
    }
    pending = data.length > 0 ? [data] : [];
    buffered = data.length;
    if (acks === 1) socket.write(ack);
    else if (acks > 1) socket.write(Buffer.alloc(8 * acks, 1));
  });
  socket.on('error', () => socket.destroy());
});

const target = kind === 'unix' ? socketPath : { host: '127.0.0.1', port: 0 };
server.listen(target, () => {
  const address = server.address();
  process.stdout.write(`ready ${typeof address === 'string' ? address : address.port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
