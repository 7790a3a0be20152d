/**
 * Docs that run: every code block of README.md is extracted from the file (so the page cannot
 * drift) and run, or carries a marker saying why not. JavaScript blocks run as written and
 * translated to the other module system (CommonJS <-> ES module), from a fresh project whose
 * node_modules/pmu is this repository. Shell blocks run in a temp dir with `npx pmu` replaced
 * by this checkout's bin/pmu.js; blocks meant for two terminals are driven line by line.
 * Bounded: every child is awaited with a deadline; ~15 s in all.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { removeTempDirs, tempDir } from './helpers/temp';
import { waitFor, waitForExit, waitForLine } from './helpers/wait';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { readmeBlocks } = require('../scripts/readme-blocks.js') as { readmeBlocks(file: string): Block[] };

interface Block {
  name: string;
  lang: string;
  line: number;
  skip?: string;
  code: string;
}

const REPO = path.join(__dirname, '..');
const PMU = path.join(REPO, 'bin', 'pmu.js');
const blocks = readmeBlocks(path.join(REPO, 'README.md'));
const block = (name: string) => blocks.find((b) => b.name === name)!;
const children: ChildProcess[] = [];

/**
 * A fresh project that depends on this checkout, as `npm install pmu` would lay it out; `scopes`
 * are package scopes it also depends on (linked from this checkout's node_modules).
 */
function project(scopes: string[] = []): string {
  const dir = tempDir('pmu-readme-');
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(REPO, path.join(dir, 'node_modules', 'pmu'));
  for (const scope of scopes) fs.symlinkSync(path.join(REPO, 'node_modules', scope), path.join(dir, 'node_modules', scope));
  fs.writeFileSync(path.join(dir, 'package.json'), '{ "name": "readme-user", "private": true }\n');
  return dir;
}

async function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}, timeoutMs = 20_000) {
  const child = spawn(command, args, { cwd, env: { ...process.env, PMU_URL: '', PMU_USER: '', PMU_SECRET: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c) => (stdout += c));
  child.stderr!.on('data', (c) => (stderr += c));
  const { code } = await waitForExit(child, timeoutMs).catch((error) => {
    child.kill('SIGKILL');
    throw error;
  });
  return { code, stdout, stderr };
}

function background(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): ChildProcess {
  const child = spawn(command, args, { cwd, env: { ...process.env, PMU_URL: '', PMU_USER: '', PMU_SECRET: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return child;
}

/** CommonJS <-> ES module, for the requires and imports of packages ('pmu', 'pmu/langgraph', ...) the README uses. */
function toEsm(code: string): string {
  return code
    .replace(/^const (\w+) = require\('([^']+)'\);$/gm, "import * as $1 from '$2';")
    .replace(/^const (\{[^}]+\}) = require\('([^']+)'\);$/gm, "import $1 from '$2';");
}

function toCommonJs(code: string): string {
  const lines = code.split('\n');
  const imports = lines.filter((l) => /^import .* from '[^']+';$/.test(l)).map((l) => l.replace(/^import (\{[^}]+\}) from '([^']+)';$/, "const $1 = require('$2');").replace(/^import \* as (\w+) from '([^']+)';$/, "const $1 = require('$2');"));
  const body = lines.filter((l) => !/^import .* from '[^']+';$/.test(l));
  return `${imports.join('\n')}\n(async () => {\n${body.join('\n')}\n})().catch((error) => {\n  console.error(error);\n  process.exitCode = 1;\n});\n`;
}

const isEsm = (code: string) => /^import .* from '[^']+';$/m.test(code);

/** Runs a JS block as written and in the other module system; returns both stdouts. */
async function runJs(name: string, env: NodeJS.ProcessEnv = {}, scopes: string[] = []): Promise<string[]> {
  const { code } = block(name);
  const variants = isEsm(code) ? [{ file: `${name}.mjs`, code }, { file: `${name}.cjs`, code: toCommonJs(code) }] : [{ file: `${name}.cjs`, code }, { file: `${name}.mjs`, code: toEsm(code) }];
  expect(variants[1].code).not.toBe(variants[0].code);
  const outputs: string[] = [];
  for (const variant of variants) {
    const dir = project(scopes);
    fs.writeFileSync(path.join(dir, variant.file), variant.code);
    const result = await run(process.execPath, [variant.file], dir, env);
    expect({ file: variant.file, code: result.code, stderr: result.stderr }).toEqual({ file: variant.file, code: 0, stderr: '' });
    outputs.push(result.stdout);
  }
  return outputs;
}

/** A shell line without its trailing comment, with `npx pmu` pointing at this checkout. */
function shellLine(line: string): string {
  return line.replace(/\s+#.*$/, '').replace(/\bnpx pmu\b/g, `node ${JSON.stringify(PMU)}`).trim();
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
  await Promise.all(children.map((child) => waitForExit(child).catch(() => undefined)));
  removeTempDirs();
});

test('every block of README.md is run here or says why not', () => {
  const runHere = ['embedded', 'cli-walkthrough', 'remote', 'checkpoint', 'kv-service', 'langgraph'];
  expect(blocks.filter((b) => !b.skip).map((b) => b.name).sort()).toEqual([...runHere].sort());
  for (const b of blocks.filter((b) => b.skip)) expect(b.skip!.length).toBeGreaterThan(10);
  expect(blocks.filter((b) => b.lang === 'js').every((b) => !b.skip)).toBe(true);
});

test('no JavaScript block mixes require with top-level await', () => {
  for (const b of blocks.filter((b) => b.lang === 'js' && !isEsm(b.code))) {
    const topLevel = b.code.split('\n').filter((l) => /^\S/.test(l));
    expect(topLevel.filter((l) => /\bawait\b/.test(l))).toEqual([]);
  }
});

test('embedded use, in CommonJS and as an ES module', async () => {
  const outputs = await runJs('embedded');
  for (const output of outputs) expect(output).toBe('hello\n');
});

test('checkpoints: primary, backup, takeover, in CommonJS and as an ES module', async () => {
  const outputs = await runJs('checkpoint');
  for (const output of outputs) {
    expect(output).toMatch(/^primary: appended record 1\n/);
    expect(output).toMatch(/backup: took over at epoch \d+; greeting = hello\n$/);
  }
});

test('the LangGraph checkpointer example, in CommonJS and as an ES module', async () => {
  const outputs = await runJs('langgraph', {}, ['@langchain']);
  for (const output of outputs) expect(output).toBe('{ count: 1 }\n');
});

describe('a PMU server, a primary and a backup (two terminals, driven line by line)', () => {
  let dir: string;
  let tcpUrl = '';
  let primarySecret = '';

  test('the CLI walkthrough runs as written', async () => {
    dir = project();
    const lines = block('cli-walkthrough').code.trim().split('\n').map(shellLine);
    expect(lines[0]).toMatch(/pmu\.js" serve$/);
    // Terminal one: the server, on a free port instead of 7420 (the credential file records it).
    const server = background('bash', ['-c', `exec ${lines[0]} --port 0`], dir);
    const [, url] = await waitForLine(server, /listening on (tcp:\/\/\S+)[\s\S]*connect with:/, 20_000);
    tcpUrl = url;
    // Terminal two: every other line, in order, each must succeed.
    for (const line of lines.slice(1)) {
      const result = await run('bash', ['-c', line], dir);
      expect({ line, code: result.code, stderr: result.code === 0 ? '' : result.stderr }).toEqual({ line, code: 0, stderr: '' });
      if (/user add primary$/.test(line)) primarySecret = result.stdout.trim();
      if (/read orders --length 5$/.test(line)) expect(result.stdout).toBe('hello');
      if (/inspect /.test(line)) expect(result.stdout).toMatch(/^region\s+orders\b/m);
    }
    expect(primarySecret).toMatch(/^[0-9a-f]{64}$/);
  });

  test('the remote client example runs against that server, in both module systems', async () => {
    expect(tcpUrl).not.toBe('');
    const outputs = await runJs('remote', { PMU_URL: tcpUrl, PMU_SECRET: primarySecret });
    for (const output of outputs) expect(output).toBe('state\n');
  });
});

test('the kv-service example: primary, backup, a PUT, kill -9, the backup serves it', async () => {
  const dir = project();
  const lines = block('kv-service').code.trim().split('\n').map(shellLine);
  const ports = new Map<string, number>();
  const jobs: ChildProcess[] = [];
  const request = async (line: string, retryUntilServed: boolean, anyStatus = false) => {
    // curl [-X METHOD] [--data BODY] HOST:PORT/PATH
    const method = /-X (\w+)/.exec(line)?.[1] ?? 'GET';
    const body = /--data (\S+)/.exec(line)?.[1];
    const target = /(localhost:\d+\/[^\s;]*)/.exec(line)![1].replace(/:(\d+)\//, (_, port: string) => `:${ports.get(port)}/`);
    const url = `http://${target.replace(/^localhost/, '127.0.0.1')}`;
    return waitFor(
      `an answer from ${url}`,
      async () => {
        try {
          const response = await fetch(url, { method, body });
          return response.ok || anyStatus ? response.text().then((text) => text || '(empty)') : undefined;
        } catch (error) {
          if (!retryUntilServed) throw error;
          return undefined;
        }
      },
      20_000,
      20,
    );
  };
  let lastAnswer = '';
  for (const line of lines) {
    if (line.endsWith('&')) {
      const args = line.slice(0, -1).trim().split(/\s+/);
      expect(args[0]).toBe('node');
      const port = args[args.length - 1];
      ports.set(port, await freePort());
      args[args.length - 1] = String(ports.get(port));
      args[1] = path.join(REPO, args[1]);
      const job = background(process.execPath, args.slice(1), dir);
      jobs.push(job);
      await waitForLine(job, /serving on|standing by/);
    } else if (/^until curl -s(f?) \S+( >\/dev\/null)?; do sleep 0\.1; done$/.test(line)) {
      // The shell's own retry loop: until it answers (-s: any status; -sf: a 2xx).
      lastAnswer = await request(line, true, !line.startsWith('until curl -sf'));
    } else if (line.startsWith('curl ')) {
      lastAnswer = await request(line, false);
    } else if (/^kill -9 %(\d+)$/.test(line)) {
      const job = jobs[Number(/%(\d+)/.exec(line)![1]) - 1];
      job.kill('SIGKILL');
      await waitForExit(job);
    } else {
      throw new Error(`the kv-service driver does not know how to run: ${line}`);
    }
  }
  expect(lastAnswer).toBe('"hello"');
  expect(block('kv-service').code).toMatch(/# "hello"/);
});
