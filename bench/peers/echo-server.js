'use strict';
// The Node ping-pong floor's far end: reads length-prefixed frames (u32 LE length + payload)
// and answers each with an 8-byte ack, the shape of a pmu WRITE and its reply, with no work
// in between. Usage: node echo-server.js tcp|unix [socketPath] [--onread]
// By default it reads with 'data' events, as most Node servers do. --onread reads into one
// buffer shared by its connections, the way pmu's server reads (lib/wire/shared-read.ts), for
// the floor with both ends on onread.
const net = require('node:net');

const args = process.argv.slice(2);
const onread = args.includes('--onread');
const [kind, socketPath] = args.filter((arg) => arg !== '--onread');
const ack = Buffer.alloc(8, 1);
const readIntoShared = onread ? require('pmu/wire').readIntoShared : undefined;
const shared = Buffer.allocUnsafe(64 * 1024);

const server = net.createServer({ pauseOnConnect: true }, (accepted) => {
  let pending = [];
  let buffered = 0;
  let socket;
  const onChunk = (chunk) => {
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
    // An onread chunk is the shared buffer, reused by the next read: keep a copy of the rest.
    pending = data.length > 0 ? [onread ? Buffer.from(data) : data] : [];
    buffered = data.length;
    if (acks === 1) socket.write(ack);
    else if (acks > 1) socket.write(Buffer.alloc(8 * acks, 1));
  };
  socket = onread ? readIntoShared(accepted, shared, onChunk) : undefined;
  if (!socket) {
    if (onread) throw new Error('this Node does not let the echo server read with onread');
    socket = accepted;
    socket.on('data', onChunk);
    socket.resume();
  }
  socket.setNoDelay(true);
  socket.on('error', () => socket.destroy());
});

const target = kind === 'unix' ? socketPath : { host: '127.0.0.1', port: 0 };
server.listen(target, () => {
  const address = server.address();
  process.stdout.write(`ready ${typeof address === 'string' ? address : address.port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
