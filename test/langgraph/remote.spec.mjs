// The official LangGraph checkpointer validation suite against PmuSaver on remote regions: a
// PmuServer in this process on loopback, the saver a client of it over TCP.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PersistentMemoryUnit, PmuClient, PmuServer, UserDirectory } from 'pmu';
import { PmuSaver } from 'pmu/langgraph';
import { REGION_BYTES, tempDir, validateSaver } from './helpers.mjs';

let dir;
let unit;
let server;
let client;
let made = 0;
const regions = new Map();

validateSaver({
  checkpointerName: 'pmu PmuSaver (remote, PmuServer over TCP loopback)',
  async beforeAll() {
    dir = tempDir();
    unit = PersistentMemoryUnit.open(path.join(dir, 'langgraph.pmu'), { size: 128 << 20 });
    server = new PmuServer({ unit, users: new UserDirectory({ agent: { secret: 'validation-secret', admin: true } }), tcp: { host: '127.0.0.1', port: 0 }, closeUnit: false });
    const addresses = await server.listen();
    client = await PmuClient.connect(addresses.tcp, { user: 'agent', secret: 'validation-secret' });
  },
  async afterAll() {
    await client?.close();
    await server?.close();
    await unit?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  },
  async createCheckpointer() {
    const name = `saver-${++made}`;
    const saver = await PmuSaver.open(await client.createRegion(name, REGION_BYTES));
    regions.set(saver, name);
    return saver;
  },
  async destroyCheckpointer(saver) {
    await saver.close();
    await client.deleteRegion(regions.get(saver));
    regions.delete(saver);
  },
});
