/**
 * Crash safety of the embedded unit: a child writes with 'flushed' durability and is killed
 * with SIGKILL at a random moment; on reopen every acknowledged write is there and the
 * metadata is valid (including regions whose creation was acknowledged).
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { PersistentMemoryUnit } from '../lib';
import { removeTempDirs, tempFile } from './helpers/temp';
import { waitForExit } from './helpers/wait';

const FIXTURE = path.join(__dirname, 'fixtures', 'unit-crash-writer.js');
const RECORD = 64;
const ITERATIONS = 50;

afterAll(removeTempDirs);

function runUntilKilled(file: string, seed: number, killAfterAcks: number): Promise<{ acked: number; created: string[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FIXTURE, file, String(seed)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let acked = 0;
    const created: string[] = [];
    let buffered = '';
    let killed = false;
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const ack = /^ack (\d+)$/.exec(line);
        if (ack) acked = Number(ack[1]);
        const made = /^created (\S+)$/.exec(line);
        if (made) created.push(made[1]);
        // Kill while the child is still writing: it never waits for us, so the signal lands
        // at an arbitrary point of its next write, flush or ATT update.
        if (!killed && acked >= killAfterAcks) {
          killed = true;
          child.kill('SIGKILL');
        }
      }
    });
    waitForExit(child, 30_000).then(({ signal }) => {
      if (signal !== 'SIGKILL') reject(new Error(`child exited without being killed (acked ${acked})`));
      else resolve({ acked, created });
    }, reject);
  });
}

test(`every acknowledged write survives SIGKILL (${ITERATIONS} random kills)`, async () => {
  let totalAcked = 0;
  for (let i = 0; i < ITERATIONS; i++) {
    const file = tempFile(`crash-${i}.pmu`);
    const unit = PersistentMemoryUnit.open(file, { size: 2 << 20, maxRegions: 64 });
    unit.createRegion('log', 1 << 20);
    await unit.close();

    const killAfter = 1 + Math.floor(Math.random() * 120);
    const { acked, created } = await runUntilKilled(file, i * 7919 + 1, killAfter);
    totalAcked += acked;

    const reopened = PersistentMemoryUnit.open(file);
    const names = reopened.listRegions().map((r) => r.name);
    for (const name of created) expect(names).toContain(name);
    const log = reopened.openRegion('log');
    for (let n = 1; n <= acked; n++) {
      const bytes = log.readSync(n * RECORD, RECORD);
      expect(bytes.readUInt32LE(0)).toBe(n);
      expect(bytes.readUInt32LE(RECORD - 4)).toBe(~n >>> 0);
    }
    await reopened.close();
  }
  expect(totalAcked).toBeGreaterThanOrEqual(ITERATIONS);
  // 50 child processes, each creating and flushing a unit file: ~15 s on an idle 2-core machine,
  // several times that when the machine is shared; the bound is for a hang, not for speed.
}, 180_000);
