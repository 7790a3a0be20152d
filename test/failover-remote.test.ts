/**
 * Failover through a PMU server: primary and backup of the example service are clients of a
 * `pmu serve` process; the backup follows the log live and learns of the primary's death from
 * the server (watchWriters) or its lease. Also: SIGKILL of the PMU server itself mid-append.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ChildProcess, spawn } from 'node:child_process';
import { CheckpointReader, PmuClient, openPrimary } from '../lib';
import { removeTempDirs, tempDir } from './helpers/temp';
import { waitForExit, waitForLine } from './helpers/wait';
import { closeAgent, failoverDrill, startService } from './fixtures/checkpoint-failover';

const PMU_BIN = path.join(__dirname, '..', 'bin', 'pmu.js');
const children: ChildProcess[] = [];

interface Served {
  server: ChildProcess;
  url: string;
  user: string;
  secret: string;
}

async function serve(dataDir: string): Promise<Served> {
  const server = spawn(process.execPath, [PMU_BIN, 'serve', '--data', dataDir, '--port', '0', '--size', '64MiB'], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(server);
  const url = (await waitForLine(server, /listening on (tcp:\/\/\S+)/))[1];
  const credential = JSON.parse(fs.readFileSync(path.join(dataDir, 'admin.credential.json'), 'utf8'));
  return { server, url, user: credential.user, secret: credential.secret };
}

afterAll(async () => {
  closeAgent();
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await waitForExit(child);
    }
  }
  removeTempDirs();
});

describe('failover, remote (through a PMU server)', () => {
  test('SIGKILL of the primary at 30 random moments: every acknowledged write survives exactly once, in order', async () => {
    const served = await serve(tempDir());
    const env = { ...process.env, PMU_USER: served.user, PMU_SECRET: served.secret };
    const start = (role: 'primary' | 'backup') => {
      const child = startService(role, served.url, env);
      children.push(child);
      return child;
    };
    const times: number[] = [];
    const result = await failoverDrill(start('primary'), {
      iterations: 30,
      startBackup: () => start('backup'),
      // A remote backup follows the log: let it subscribe before the primary can die.
      waitForStandby: true,
      onFailover: (ms) => times.push(ms),
    });
    expect(times).toHaveLength(30);
    expect(result.lanes.reduce((sum, lane) => sum + lane.acked.length, 0)).toBeGreaterThanOrEqual(30);
  }, 180_000);

  test('SIGKILL of the PMU server mid-append, 5 times: after each restart no torn record is returned and every acknowledged append is there', async () => {
    const dataDir = tempDir();
    // Record s carries s in its first 8 bytes and has a length derived from s, so content is checkable.
    const payloadFor = (sequence: number) => {
      const bytes = Buffer.alloc(8 + ((sequence * 37) % 3000), sequence & 0xff);
      bytes.writeBigUInt64LE(BigInt(sequence));
      return bytes;
    };
    for (let round = 0; round < 5; round++) {
      const served = await serve(dataDir);
      const client = await PmuClient.connect(served.url, { user: served.user, secret: served.secret, timeoutMs: 2000 });
      const region = round === 0 ? await client.createRegion('log', 4 << 20) : await client.openRegion('log');
      const writer = (await openPrimary(region, { mode: 'append', heartbeatMs: 0 })).writer;
      const base = writer.nextSequence - 1;
      const killAfter = 1 + Math.floor(Math.random() * 150);
      let ackedThisRound = 0;
      let highestAcked = base;
      let killed = false;
      // Up to 32 appends in flight at once; the server dies under them after a random number of acks.
      const inFlight = new Set<Promise<void>>();
      for (let i = 1; i <= 2000 && !killed; i++) {
        const append: Promise<void> = writer.append(payloadFor(base + i)).then(
          (sequence) => {
            highestAcked = Math.max(highestAcked, sequence);
            if (++ackedThisRound >= killAfter && !killed) {
              killed = true;
              served.server.kill('SIGKILL');
            }
          },
          () => undefined,
        );
        inFlight.add(append);
        void append.then(() => inFlight.delete(append));
        if (inFlight.size >= 32) await Promise.race(inFlight);
      }
      if (!killed) served.server.kill('SIGKILL');
      await Promise.all(inFlight);
      await waitForExit(served.server);
      await client.close().catch(() => undefined);

      const again = await serve(dataDir);
      const reading = await PmuClient.connect(again.url, { user: again.user, secret: again.secret });
      const reader = await CheckpointReader.open(await reading.openRegion('log'));
      const sequences: number[] = [];
      for (;;) {
        const batch = await reader.readBatch();
        for (const record of batch.records) {
          sequences.push(record.sequence);
          expect(record.payload.equals(payloadFor(record.sequence))).toBe(true);
        }
        if (batch.stop.reason !== 'limit') break;
      }
      expect(sequences).toEqual(Array.from({ length: sequences.length }, (_, i) => i + 1));
      expect(sequences.length).toBeGreaterThanOrEqual(highestAcked);
      await reading.close();
      again.server.kill('SIGTERM');
      await waitForExit(again.server);
    }
  }, 120_000);
});
