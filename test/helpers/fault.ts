/**
 * Real fault injection: a child process runs under strace, which makes chosen system calls fail
 * (`-e inject=msync:error=EIO`), with seccomp-bpf so only those calls stop the child. Also the
 * skip rule for tools a test needs: missing outside CI, a loud skip naming the install command;
 * missing under CI=true, a failure.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { waitForExit } from './wait';

export const FAULT_CHILD = path.join(__dirname, '..', 'fixtures', 'fault-child.js');

export function hasCommand(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/** True if the requirement holds; otherwise skips loudly, or throws under CI=true. */
export function required(what: string, ok: boolean, install: string): boolean {
  if (ok) return true;
  const message = `${what} is not available; install it with: ${install}`;
  if (process.env.CI === 'true') throw new Error(`CI=true: ${message}`);
  // eslint-disable-next-line no-console
  console.warn(`SKIPPING fault-injection tests: ${message}`);
  return false;
}

export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** strace's arguments that make each `syscall:error=E[:when=N]` fail, tracing nothing else. */
export function straceArgs(injections: string[]): string[] {
  const calls = [...new Set(injections.map((i) => i.split(':')[0]))];
  return ['-f', '--seccomp-bpf', '-qq', '-o', '/dev/null', '-e', `trace=${calls.join(',')}`, ...injections.flatMap((i) => ['-e', `inject=${i}`])];
}

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  result: any;
}

/** Runs a fault-child.js scenario, under strace when `injections` is not empty. */
export async function runScenario(injections: string[], scenario: string, args: string[], timeoutMs = 20_000): Promise<ChildResult> {
  const node = [process.execPath, FAULT_CHILD, scenario, ...args];
  const child = injections.length > 0 ? spawn('strace', [...straceArgs(injections), ...node], { stdio: ['ignore', 'pipe', 'pipe'] }) : spawn(node[0], node.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => (stdout += chunk));
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const { code, signal } = await waitForExit(child, timeoutMs);
  const line = stdout.trim().split('\n').pop() ?? '';
  let result: unknown;
  try {
    result = JSON.parse(line);
  } catch {
    result = undefined;
  }
  return { code, signal, stderr, result };
}
