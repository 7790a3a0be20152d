/**
 * examples/agent-failover: a LangGraph agent thread checkpointed by PmuSaver, its primary
 * killed with SIGKILL mid-thread; the standby must resume the thread from the last checkpoint
 * the primary had acknowledged (nothing acknowledged lost), and finish it with every step done
 * exactly once. Remote (through `pmu serve`, the standby following live) and embedded (the
 * standby waiting for the unit file's lock).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ChildProcess, spawn } from 'node:child_process';
import { removeTempDirs, tempDir } from './helpers/temp';
import { waitFor, waitForExit, waitForLine } from './helpers/wait';

const ROOT = path.join(__dirname, '..');
const AGENT = path.join(ROOT, 'examples', 'agent-failover', 'agent.js');
const PMU_BIN = path.join(ROOT, 'bin', 'pmu.js');
const STEPS = 100;
const KILL_AFTER = 10;
/** Each step's tool call: 90 steps after the kill point leave the test ~2.7 s to kill mid-thread. */
const STEP_MS = '30';
type Child = ChildProcess & { output: () => string };
const children: Child[] = [];

afterAll(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await waitForExit(child);
    }
  }
  removeTempDirs();
});

function start(args: string[], env: NodeJS.ProcessEnv = process.env): Child {
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] }) as Child;
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.output = () => output;
  children.push(child);
  return child;
}

/** Waits for `pattern` anywhere in the child's output so far (a line printed before the call counts). */
function waitForOutput(child: Child, pattern: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> {
  return waitFor(`${pattern} in the output of ${child.spawnargs.slice(1, 3).join(' ')}`, () => child.output().match(pattern) ?? undefined, timeoutMs);
}

/** The counts the primary's steps started from: each one's checkpoint was acknowledged ('sync' durability). */
function acknowledgedCounts(output: string): number[] {
  return [...output.matchAll(/step from (\d+)/g)].map((match) => Number(match[1]));
}

async function drill(where: string, env: NodeJS.ProcessEnv, standbyReady: RegExp): Promise<void> {
  // The primary holds the thread until the standby is ready, so a slow start cannot let it finish first.
  const primary = start([AGENT, 'primary', where, 'thread-1', String(STEPS)], { ...env, AGENT_WAIT_FOR_GO: '1', AGENT_STEP_MS: STEP_MS });
  await waitForOutput(primary, /primary running thread-1 from count 0/);
  const standby = start([AGENT, 'standby', where, 'thread-1', String(STEPS)], { ...env, AGENT_STEP_MS: STEP_MS });
  await waitForOutput(standby, standbyReady);
  primary.stdin?.write('go\n');
  await waitForOutput(primary, new RegExp(`step from (${KILL_AFTER}|[1-9]\\d)\\b`));
  primary.kill('SIGKILL');
  expect((await waitForExit(primary)).signal).toBe('SIGKILL');
  const acknowledged = Math.max(...acknowledgedCounts(primary.output()));
  expect(acknowledged).toBeGreaterThanOrEqual(KILL_AFTER);
  expect(acknowledged).toBeLessThan(STEPS);

  const resumed = Number((await waitForOutput(standby, /standby running thread-1 from count (\d+)/))[1]);
  // Nothing acknowledged is lost; at most the one step that was being saved when the primary died is ahead.
  expect(resumed).toBeGreaterThanOrEqual(acknowledged);
  expect(resumed).toBeLessThanOrEqual(acknowledged + 1);
  const done = JSON.parse((await waitForOutput(standby, /done (\{.*\})/))[1]);
  expect(done.count).toBe(STEPS);
  // Every step exactly once: none lost, none applied twice across the failover.
  expect(done.steps).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));
  expect((await waitForExit(standby)).code).toBe(0);
  // The standby's own steps continue where the checkpoint left off.
  expect(acknowledgedCounts(standby.output())[0]).toBe(resumed);
}

test('remote: SIGKILL of the primary mid-thread, the standby following through pmu serve resumes it', async () => {
  const dataDir = tempDir();
  const server = start([PMU_BIN, 'serve', '--data', dataDir, '--port', '0', '--size', '64MiB']);
  const url = (await waitForLine(server, /listening on (tcp:\/\/\S+)/))[1];
  const credential = JSON.parse(fs.readFileSync(path.join(dataDir, 'admin.credential.json'), 'utf8'));
  await drill(url, { ...process.env, PMU_USER: credential.user, PMU_SECRET: credential.secret }, /standing by: following the log/);
  const standbyOutput = children[children.length - 1].output();
  expect(standbyOutput).toMatch(/primary lost: (disconnected|lease)/);
});

test('embedded: SIGKILL of the primary mid-thread, the standby waiting for the unit lock resumes it', async () => {
  await drill(path.join(tempDir(), 'agents.pmu'), process.env, /standing by: waiting for the unit lock/);
});
