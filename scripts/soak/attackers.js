'use strict';
// The soak's malicious clients, all at once, in their own process, until the parent sends 'stop';
// then they report what each attack did. Environment: SOAK_URL, SOAK_UNIX, SOAK_METRICS, SOAK_SECRETS
// (JSON); SOAK_DEBUG=1 prints each attack's end (to find one that does not stop).
// Every attack is one the server must survive without harm to anyone else:
//   watch-flood      WATCH until refused, then stop reading while another connection churns events
//   header-bodies    WRITE headers claiming 64 MiB for regions the connection may not write
//   slow-bodies      WRITE bodies on its own region trickled slowly on many connections (budget)
//   budget-lockout   WRITE headers claiming a whole region, 28 bytes sent, then a 1-byte drip, on
//                    eight connections: while they hold them another user's 512 KiB WRITE must
//                    not get EBUSY (counted as budget-lockout.LOCKED-OUT); the drips are dropped
//                    after bodyStallTimeoutMs (budget-lockout.dropped) and come back
//   silent           connections that never authenticate
//   conn-flood       logins of one user until refused
//   garbage          random bytes, before and after login
//   unread-replies   pipelined writes and 1 MiB reads whose replies are never read
//   auth-guess       unknown users and wrong secrets
//   out-of-region    forged keys and handles, addresses past the region's end
//   revoke-churn     a writer whose grant an admin keeps taking away and giving back
//   metrics-freeze   fills its own 4 MiB region with minimal checkpoint records (never cleared)
//                    and scrapes /metrics every 10 ms: one over 3 s as this process sees it is
//                    metrics-freeze.FROZEN; the soak also checks the server took under 500 ms for each
//   metrics-flood    holds 300 silent sockets to the metrics port, renewing those the server
//                    closes; a scrape after the flood that fails is metrics-flood.SCRAPE-FAILED
//   tls-flood        holds 160 TCP connections to the TLS port that never finish (or start) a TLS
//                    handshake, renewing those the server closes; meanwhile a TLS login and a
//                    Unix-socket login must get in (three tries each): tls-flood.LOCKED-OUT if not
//   relay            a relay between mallory2's sealed session and the server reads the OPEN
//                    reply's handle and key and injects a WRITE with them; a WRITE that lands
//                    (seen on a direct connection) is relay.INJECTED, a session the server
//                    does not close within 3 s is relay.NOT-CLOSED
const crypto = require('node:crypto');
const net = require('node:net');
const { PmuClient, openPrimary } = require('pmu');
const { FrameReader, encodeHeader, HELLO_BYTES, Op, PROTOCOL_VERSION, WRITE_FIXED_BYTES, proof } = require('pmu/wire');

const url = process.env.SOAK_URL;
const metricsUrl = process.env.SOAK_METRICS;
const tlsUrl = process.env.SOAK_TLS;
const tlsCa = process.env.SOAK_TLS_CA ? require('node:fs').readFileSync(process.env.SOAK_TLS_CA) : undefined;
const unixUrl = process.env.SOAK_UNIX;
const port = Number(url.split(':').pop());
const secrets = JSON.parse(process.env.SOAK_SECRETS);
let stopping = false;
const counts = {};
const count = (what, n = 1) => (counts[what] = (counts[what] ?? 0) + n);
const sockets = new Set();
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A hand-driven connection: frames in a queue, AUTH by hand. */
function raw() {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    sockets.add(socket);
    const frames = [];
    let wake;
    const peer = {
      socket,
      closed: false,
      send(op, id, body = Buffer.alloc(0), flags = 0) {
        if (!socket.destroyed) socket.write(Buffer.concat([encodeHeader(op, flags, id, body.length), body]));
      },
      async next(ms = 3000) {
        const deadline = Date.now() + ms;
        while (frames.length === 0 && !peer.closed && Date.now() < deadline) await new Promise((r) => ((wake = r), setTimeout(r, 50)));
        return frames.shift();
      },
      async auth(user, secret) {
        const hello = await peer.next();
        if (!hello) return false;
        const nonce = crypto.randomBytes(32);
        const transcript = { version: PROTOCOL_VERSION, authFlags: 0, serverNonce: hello.body.subarray(8, HELLO_BYTES), clientNonce: nonce, user, identity: hello.body.subarray(HELLO_BYTES).toString('latin1'), channelBinding: Buffer.alloc(0) };
        peer.send(Op.AUTH, 1, Buffer.concat([nonce, proof('client', secret, transcript), Buffer.from(user)]));
        const reply = await peer.next();
        return reply?.header.op === Op.OK;
      },
      async open(name, rights = 0) {
        peer.send(Op.OPEN, 2, Buffer.concat([Buffer.from([rights]), Buffer.from(name)]));
        const reply = await peer.next();
        if (reply?.header.op !== Op.OK) return undefined;
        return { handle: reply.body.readUInt32LE(0), base: Number(reply.body.readBigUInt64LE(8)), size: Number(reply.body.readBigUInt64LE(16)), key: Buffer.from(reply.body.subarray(24, 40)) };
      },
      destroy() {
        socket.destroy();
      },
    };
    const reader = new FrameReader({ onFrame: (header, body) => (frames.push({ header, body: Buffer.from(body) }), wake?.()), onStreamError: () => socket.destroy() }, 1 << 30);
    socket.on('data', (chunk) => reader.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      peer.closed = true;
      sockets.delete(socket);
      wake?.();
    });
    socket.once('connect', () => resolve(peer));
    socket.once('error', () => resolve(peer));
  });
}

function prefix(handle, key, vaddr, extra = 0) {
  const body = Buffer.alloc(28 + extra);
  body.writeUInt32LE(handle, 0);
  key.copy(body, 4);
  body.writeBigUInt64LE(BigInt(vaddr), 20);
  return body;
}

async function loop(name, body) {
  while (!stopping) {
    try {
      await body();
      count(name);
    } catch {
      count(`${name}.errors`);
    }
    // Ten attacks share one process and, with the server, two cores: each yields a little.
    await pause(5);
  }
}

const attacks = {
  async 'metrics-freeze'() {
    const client = await PmuClient.connect(url, { user: 'mallory1', secret: secrets.mallory1, timeoutMs: 10_000 });
    const { writer } = await openPrimary(await client.openRegion('m5'), { mode: 'append', heartbeatMs: 0, whenFull: 'error', durability: 'mapped' });
    let full = false;
    const filling = (async () => {
      while (!stopping && !full) {
        const batch = Array.from({ length: 256 }, () => writer.append(Buffer.from('x')));
        await Promise.all(batch).catch(() => (full = true)); // the ring is full: the log stays uncleared
        count('metrics-freeze.records', 256);
      }
    })();
    await loop('metrics-freeze', async () => {
      const started = Date.now();
      await (await fetch(metricsUrl, { signal: AbortSignal.timeout(5000) })).text();
      // As this (busy, shared) process sees it; the server's own timing is what the soak checks.
      if (Date.now() - started > 500) count('metrics-freeze.slow-at-client');
      if (Date.now() - started > 3000) count('metrics-freeze.FROZEN');
      await pause(10);
    });
    await filling;
    await writer.close().catch(() => undefined);
    await client.close().catch(() => undefined);
  },
  async 'metrics-flood'() {
    const { port: metricsPort } = new URL(metricsUrl);
    const held = new Set();
    await loop('metrics-flood', async () => {
      while (held.size < 300 && !stopping) {
        const socket = net.connect({ host: '127.0.0.1', port: Number(metricsPort) });
        held.add(socket);
        socket.on('error', () => undefined);
        socket.on('close', () => {
          held.delete(socket);
          count('metrics-flood.closed-by-server');
        });
      }
      await pause(100);
    });
    for (const socket of held) socket.destroy();
    // Once the flood stops, the endpoint answers again.
    const ok = await fetch(metricsUrl, { signal: AbortSignal.timeout(5000) }).then((response) => response.ok, () => false);
    if (!ok) count('metrics-flood.SCRAPE-FAILED');
  },
  async 'tls-flood'() {
    const tlsPort = Number(tlsUrl.split(':').pop());
    const held = new Set();
    const getsIn = async (target, options) => {
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          const client = await PmuClient.connect(target, { user: 'mallory3', secret: secrets.mallory3, timeoutMs: 5000, ...options });
          await client.close();
          return true;
        } catch {
          count('tls-flood.retried');
        }
      }
      return false;
    };
    await loop('tls-flood', async () => {
      // Past maxPendingHandshakes (128): the server must evict, and keep others getting in.
      while (held.size < 160 && !stopping) {
        const socket = net.connect({ host: '127.0.0.1', port: tlsPort });
        held.add(socket);
        // Half of them send the first bytes of a ClientHello and stall; the rest send nothing.
        if (held.size % 2) socket.once('connect', () => socket.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])));
        socket.on('error', () => undefined);
        socket.on('close', () => {
          held.delete(socket);
          count('tls-flood.closed-by-server');
        });
      }
      if (!(await getsIn(tlsUrl, { tls: { ca: tlsCa } }))) count('tls-flood.LOCKED-OUT');
      if (unixUrl && !(await getsIn(unixUrl, {}))) count('tls-flood.LOCKED-OUT');
      await pause(250);
    });
    for (const socket of held) socket.destroy();
  },
  async relay() {
    const direct = await PmuClient.connect(url, { user: 'mallory2', secret: secrets.mallory2, timeoutMs: 5000 });
    const check = await direct.openRegion('m1');
    await loop('relay', async () => {
      let upstream;
      let learned;
      const relayServer = net.createServer((down) => {
        const up = net.connect({ host: '127.0.0.1', port });
        upstream = up;
        sockets.add(up);
        sockets.add(down);
        for (const s of [up, down]) s.on('error', () => undefined);
        up.on('close', () => down.destroy());
        down.on('close', () => up.destroy());
        down.on('data', (chunk) => up.write(chunk));
        up.on('data', (chunk) => {
          // An OPEN reply (40 bytes, plus the 16-byte tag of a sealed session) in plain sight.
          for (let at = 0; at + 12 <= chunk.length; at++) {
            if (chunk[at + 5] === Op.OK && chunk.readUInt32LE(at) === 56 && at + 12 + 40 <= chunk.length) {
              const body = chunk.subarray(at + 12, at + 52);
              learned = { handle: body.readUInt32LE(0), base: Number(body.readBigUInt64LE(8)), key: Buffer.from(body.subarray(24, 40)) };
            }
          }
          down.write(chunk);
        });
      });
      await new Promise((resolve) => relayServer.listen(0, '127.0.0.1', resolve));
      try {
        const victim = await PmuClient.connect(`tcp://127.0.0.1:${relayServer.address().port}`, { user: 'mallory2', secret: secrets.mallory2, seal: true, timeoutMs: 5000 });
        const region = await victim.openRegion('m1', { rights: 'rw' });
        await region.write(200, Buffer.from('victim'));
        if (learned && upstream) {
          const payload = Buffer.from('INJECTED');
          upstream.write(Buffer.concat([encodeHeader(Op.WRITE, 0, 777, WRITE_FIXED_BYTES + payload.length), prefix(learned.handle, learned.key, learned.base + 100, 16), payload]));
        }
        if (!learned) count('relay.NO-KEY-SEEN');
        // The server must close the session the frame was injected into (bounded wait).
        const deadline = Date.now() + 3000;
        while (victim.connected && Date.now() < deadline) await pause(5);
        count(victim.connected ? 'relay.NOT-CLOSED' : 'relay.closed');
        await victim.close().catch(() => undefined);
        if ((await check.read(100, 8)).toString() === 'INJECTED') count('relay.INJECTED');
      } finally {
        await new Promise((resolve) => relayServer.close(resolve));
      }
      await pause(50);
    });
    await direct.close().catch(() => undefined);
  },
  async 'watch-flood'() {
    const peer = await raw();
    if (!(await peer.auth('mallory1', secrets.mallory1))) return;
    const region = await peer.open('ckpt', 1);
    if (!region) return;
    // 100,000 WATCHes, every reply read; then it never reads again.
    const watch = prefix(region.handle, region.key, 0).subarray(0, 20);
    for (let sent = 0; sent < 100_000; ) {
      for (let i = 0; i < 1000; i++, sent++) peer.send(Op.WATCH, 100 + sent, watch);
      for (let i = 0; i < 1000; i++) if (!(await peer.next(10_000))) return;
    }
    peer.socket.pause();
    const churn = await PmuClient.connect(url, { user: 'mallory2', secret: secrets.mallory2, timeoutMs: 5000 });
    await loop('watch-flood', async () => {
      // Each close is news for every subscription mallory1 holds: bounded, or the server grows.
      await (await churn.openRegion('m1')).close();
    });
    await churn.close().catch(() => undefined);
  },
  async 'header-bodies'() {
    // A user with no write right anywhere claims 64 MiB bodies and sends the first MiB of each,
    // keeping the connections open: refused from the first bytes, or 64 MiB buffers filling up.
    const held = [];
    await loop('header-bodies', async () => {
      const peer = await raw();
      if (!(await peer.auth('eve', secrets.eve))) return peer.destroy();
      const fixed = prefix(1 + Math.floor(Math.random() * 8), crypto.randomBytes(16), 0, 16);
      peer.socket.write(Buffer.concat([encodeHeader(Op.WRITE, 1, 10, WRITE_FIXED_BYTES + (64 << 20) - 64), fixed, Buffer.alloc(1 << 20, 0xee)]));
      held.push(peer);
      if (held.length > 60) held.shift().destroy();
      await pause(50);
    });
    for (const peer of held) peer.destroy();
  },
  async 'slow-bodies'() {
    const peers = [];
    // 12 bodies of 16 MiB: past the 160 MiB a user may have arriving, the last are refused (EBUSY).
    for (let i = 0; i < 12; i++) {
      const peer = await raw();
      if (!(await peer.auth('mallory3', secrets.mallory3))) continue;
      const region = await peer.open('m3', 3);
      if (!region) continue;
      peer.socket.write(Buffer.concat([encodeHeader(Op.WRITE, 0, 9, WRITE_FIXED_BYTES + region.size), prefix(region.handle, region.key, region.base, 16)]));
      peers.push(peer);
    }
    await loop('slow-bodies', async () => {
      for (const peer of peers) if (!peer.closed) peer.socket.write(crypto.randomBytes(4096));
      await pause(20);
    });
  },
  async 'budget-lockout'() {
    const claims = new Set();
    const claim = async () => {
      const peer = await raw();
      if (!(await peer.auth('mallory3', secrets.mallory3))) return peer.destroy();
      const region = await peer.open('m3', 3);
      if (!region) return peer.destroy();
      // 28 bytes: enough for the WRITE to be admitted; the rest of its claimed body never comes.
      peer.socket.write(Buffer.concat([encodeHeader(Op.WRITE, 0, 9, WRITE_FIXED_BYTES + region.size), prefix(region.handle, region.key, region.base)]));
      claims.add(peer);
      peer.socket.on('close', () => {
        claims.delete(peer);
        count('budget-lockout.dropped');
      });
    };
    const victim = await PmuClient.connect(url, { user: 'mallory2', secret: secrets.mallory2, timeoutMs: 5000 });
    const region = await victim.openRegion('m2');
    const payload = crypto.randomBytes(512 << 10);
    await loop('budget-lockout', async () => {
      while (claims.size < 8 && !stopping) await claim();
      for (const peer of claims) peer.socket.write(Buffer.alloc(1));
      // Arrives in pieces, so it needs the budget the claims would have locked.
      await region.write(0, payload, { durability: 'mapped' }).catch((error) => {
        if (error.code === 'EBUSY') count('budget-lockout.LOCKED-OUT');
        else throw error;
      });
      await pause(500);
    });
    for (const peer of claims) peer.destroy();
    await victim.close().catch(() => undefined);
  },
  async silent() {
    await loop('silent', async () => {
      await raw(); // never authenticates; the server evicts the oldest past its handshake limit
      await pause(5);
    });
  },
  async 'conn-flood'() {
    const held = [];
    await loop('conn-flood', async () => {
      try {
        held.push(await PmuClient.connect(url, { user: 'mallory1', secret: secrets.mallory1, timeoutMs: 3000 }));
      } catch (error) {
        count(`conn-flood.${error.code}`);
        await pause(50);
      }
    });
    await Promise.all(held.map((c) => c.close().catch(() => undefined)));
  },
  async garbage() {
    await loop('garbage', async () => {
      const peer = await raw();
      if (Math.random() < 0.5 && !(await peer.auth('mallory2', secrets.mallory2))) return peer.destroy();
      peer.socket.write(crypto.randomBytes(1 + Math.floor(Math.random() * 8192)));
      await peer.next(200);
      peer.destroy();
    });
  },
  async 'unread-replies'() {
    await loop('unread-replies', async () => {
      const peer = await raw();
      if (!(await peer.auth('mallory2', secrets.mallory2))) return peer.destroy();
      const region = await peer.open('m2', 3);
      if (!region) return peer.destroy();
      peer.socket.pause();
      const read = prefix(region.handle, region.key, region.base, 4);
      read.writeUInt32LE(Math.min(1 << 20, region.size), 28);
      const write = Buffer.concat([prefix(region.handle, region.key, region.base, 16), crypto.randomBytes(4096)]);
      for (let i = 0; i < 300; i++) {
        peer.send(Op.READ, 1000 + i, read);
        peer.send(Op.WRITE, 5000 + i, write);
      }
      await pause(300);
      peer.destroy();
    });
  },
  async 'auth-guess'() {
    await loop('auth-guess', async () => {
      const user = Math.random() < 0.5 ? `ghost${Math.floor(Math.random() * 1000)}` : 'primary';
      await PmuClient.connect(url, { user, secret: crypto.randomBytes(16).toString('hex'), timeoutMs: 3000 }).then(
        (client) => client.close().then(() => count('auth-guess.GOT-IN')),
        () => undefined,
      );
    });
  },
  async 'out-of-region'() {
    const peer = await raw();
    if (!(await peer.auth('mallory2', secrets.mallory2))) return;
    const region = await peer.open('m2', 3);
    let id = 10;
    await loop('out-of-region', async () => {
      // Forged keys on every handle, then our own region's key past its end and at its base - 1.
      for (let handle = 0; handle < 12; handle++) peer.send(Op.WRITE, id++, Buffer.concat([prefix(handle, crypto.randomBytes(16), 0, 16), Buffer.alloc(64, 0xee)]));
      peer.send(Op.WRITE, id++, Buffer.concat([prefix(region.handle, region.key, region.base + region.size - 8, 16), Buffer.alloc(64, 0xee)]));
      peer.send(Op.WRITE, id++, Buffer.concat([prefix(region.handle, region.key, region.base - 1, 16), Buffer.alloc(64, 0xee)]));
      for (let i = 0; i < 14; i++) {
        const reply = await peer.next(2000);
        if (reply?.header.op === Op.OK) count('out-of-region.ACCEPTED');
      }
      await pause(5);
    });
  },
  async 'revoke-churn'() {
    const admin = await PmuClient.connect(url, { user: 'admin', secret: secrets.admin, timeoutMs: 5000 });
    const victim = await PmuClient.connect(url, { user: 'revokee', secret: secrets.revokee, timeoutMs: 5000 });
    let granted = true;
    await loop('revoke-churn', async () => {
      granted = !granted;
      await admin.setGrants('m4', granted ? [{ user: 'revokee', rights: 'rw' }] : []);
      const wrote = await victim
        .openRegion('m4')
        .then((r) => r.write(0, Buffer.from('revokee'), { durability: 'mapped' }))
        .then(
          () => true,
          () => false,
        );
      if (wrote !== granted) count('revoke-churn.WRONG');
      await pause(20);
    });
    await Promise.all([admin.close(), victim.close()].map((p) => p.catch(() => undefined)));
  },
};

process.on('message', (message) => {
  if (message !== 'stop') return;
  stopping = true;
});

(async () => {
  if (!metricsUrl) for (const name of ['metrics-freeze', 'metrics-flood']) delete attacks[name]; // an older server under test
  if (!tlsUrl) delete attacks['tls-flood']; // no openssl to make its certificate
  const running = Object.entries(attacks).map(([name, attack]) =>
    attack()
      .catch((error) => count(`${name}.crashed:${error.message}`))
      .finally(() => process.env.SOAK_DEBUG && process.stderr.write(`attack ${name} done\n`)),
  );
  process.send({ started: Object.keys(attacks) });
  await Promise.all(running);
  for (const socket of sockets) socket.destroy();
  process.send({ counts });
  process.disconnect();
})();
