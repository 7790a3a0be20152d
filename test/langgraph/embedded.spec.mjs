// The official LangGraph checkpointer validation suite against PmuSaver on an embedded unit
// file: every saver gets its own region of one unit.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PersistentMemoryUnit } from 'pmu';
import { PmuSaver } from 'pmu/langgraph';
import { REGION_BYTES, tempDir, validateSaver } from './helpers.mjs';

let dir;
let unit;
let made = 0;
const regions = new Map();

validateSaver({
  checkpointerName: 'pmu PmuSaver (embedded unit file)',
  beforeAll() {
    dir = tempDir();
    unit = PersistentMemoryUnit.open(path.join(dir, 'langgraph.pmu'), { size: 128 << 20 });
  },
  async afterAll() {
    await unit?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  },
  async createCheckpointer() {
    const name = `saver-${++made}`;
    const saver = await PmuSaver.open(unit.createRegion(name, REGION_BYTES));
    regions.set(saver, name);
    return saver;
  },
  async destroyCheckpointer(saver) {
    await saver.close();
    unit.deleteRegion(regions.get(saver));
    regions.delete(saver);
  },
});
