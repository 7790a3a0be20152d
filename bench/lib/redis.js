'use strict';
// A private Redis for the bench: its own port and directory, never the system instance.
// Shared by the peers suite (one client) and the scale suites (many connections).
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { startChild } = require('./child');

const { freePort } = require('./free-port');

function hasRedis() {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    require.resolve('ioredis');
    return true;
  } catch {
    return false;
  }
}

/** Starts redis-server with `extra` arguments; returns { server, client, port, connect() }. */
async function startRedis(ctx, name, extra) {
  const port = await freePort();
  const dir = path.join(ctx.dir, name);
  fs.mkdirSync(dir, { recursive: true });
  // maxclients: the scale suite opens 256 connections at once.
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--protected-mode', 'yes', '--maxclients', '1024', ...extra];
  const server = await startChild('redis-server', args, /Ready to accept connections/);
  const connect = async () => {
    const Redis = require('ioredis');
    const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, enableAutoPipelining: false });
    await client.connect();
    return client;
  };
  return { server, client: await connect(), port, connect };
}

module.exports = { freePort, hasRedis, startRedis };
