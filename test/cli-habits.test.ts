/**
 * The CLI's habits, as in git, redis-cli and etcdctl: --version, help CMD, help made from the
 * parser's own table, one line per mistake with a suggestion and one prefix, sizes that mean
 * what they say, hints that name the fix, and a server that stops cleanly on SIGINT and SIGTERM,
 * under npx too. Commands run as child processes (bin/pmu.js over dist/). ~5 s.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { COMMANDS } from '../lib/cli/main';
import { helpText } from '../lib/cli/help';
import { parseSize } from '../lib/cli/sizes';
import { removeTempDirs, tempDir } from './helpers/temp';
import { waitForExit, waitForLine } from './helpers/wait';

const ROOT = path.join(__dirname, '..');
const PMU = path.join(ROOT, 'bin', 'pmu.js');
const VERSION = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version;

function pmu(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  const result = spawnSync(process.execPath, [PMU, ...args], { cwd: options.cwd ?? tempDir(), env: { ...process.env, PMU_URL: '', PMU_USER: '', PMU_SECRET: '', ...options.env }, timeout: 20_000 });
  return { code: result.status, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
}

afterAll(removeTempDirs);

test('pmu --version and -v print the package version', () => {
  for (const flag of ['--version', '-v']) expect(pmu([flag])).toMatchObject({ code: 0, stdout: `pmu ${VERSION}\n`, stderr: '' });
});

test('pmu help CMD prints the same help as pmu CMD --help, not the overview', () => {
  const overview = pmu(['help']).stdout;
  for (const name of Object.keys(COMMANDS)) {
    const viaHelp = pmu(['help', name]);
    expect(viaHelp.code).toBe(0);
    expect(viaHelp.stdout).toMatch(new RegExp(`^Usage: pmu ${name}`));
    expect(viaHelp.stdout).not.toBe(overview);
    expect(pmu([name, '--help']).stdout).toBe(viaHelp.stdout);
  }
  expect(pmu(['help', 'nope'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/^pmu: unknown command "nope"/) });
});

describe('help is made from the table the parser takes', () => {
  for (const [name, command] of Object.entries(COMMANDS)) {
    test(`pmu ${name}: every option in the table is in the help, every --option the help names is in the table`, () => {
      const help = helpText(name, command);
      for (const option of Object.keys(command.options)) expect(help).toMatch(new RegExp(`^  (-\\w, )?--${option}\\b`, 'm'));
      const named = new Set([...help.matchAll(/(?<![\w-])--([a-z][a-z0-9-]*)/g)].map((m) => m[1]));
      // Options of other commands a help may point to (pmu serve --metrics, pmu serve --join, pmu serve --tls-cert).
      const elsewhere = name === 'serve' ? [] : [...(name === 'stat' ? ['metrics'] : []), ...(name === 'cluster' ? ['join'] : []), ...(Object.keys(command.options).includes('tls-ca') ? ['tls-cert'] : [])];
      for (const option of named) if (option !== 'help' && !elsewhere.includes(option)) expect([name, option, Object.keys(command.options).includes(option)]).toEqual([name, option, true]);
    });
  }

  test('the serve usage line names --metrics, --no-tcp, --users and --join', () => {
    const usage = pmu(['help', 'serve']).stdout.split('\n\n')[0];
    for (const option of ['--metrics HOST:PORT', '--no-tcp', '--users FILE', '--join URL', '--size BYTES']) expect(usage).toContain(option);
  });

  test('bench --help lists every suite bench/run.js knows', () => {
    const { SUITES } = require(path.join(ROOT, 'bench', 'lib', 'suite-names.js'));
    expect(SUITES.length).toBeGreaterThanOrEqual(11);
    expect(pmu(['bench', '--help']).stdout).toContain(`Suites: ${SUITES.join(', ')}.`);
  });
});

describe('one line per mistake', () => {
  test('an unknown option: the nearest known one, and where to read more', () => {
    expect(pmu(['serve', '--metric', '127.0.0.1:9464'])).toMatchObject({ code: 2, stderr: 'pmu serve: unknown option --metric; did you mean --metrics? (pmu help serve)\n' });
    expect(pmu(['region', 'list', '--jsno'])).toMatchObject({ code: 2, stderr: 'pmu region: unknown option --jsno; did you mean --json? (pmu help region)\n' });
    expect(pmu(['read', 'r', '--zzzzzz'])).toMatchObject({ code: 2, stderr: 'pmu read: unknown option --zzzzzz (pmu help read)\n' });
  });

  test('a missing value and a value given to a switch', () => {
    expect(pmu(['serve', '--size'])).toMatchObject({ code: 2, stderr: 'pmu serve: --size needs a value (BYTES) (pmu help serve)\n' });
    expect(pmu(['region', 'list', '--json=yes'])).toMatchObject({ code: 2, stderr: 'pmu region: --json takes no value, got "yes" (pmu help region)\n' });
  });

  test('no message says the command twice, nor Node\'s parseArgs words', () => {
    const cases = [['write'], ['read'], ['tail'], ['inspect'], ['user', 'add'], ['region', 'delete'], ['region', 'grant', 'x'], ['cluster', 'add'], ['cluster', 'create'], ['write', '--bogus'], ['serve', '--size']];
    for (const args of cases) {
      const { code, stderr } = pmu(args);
      expect([args, code]).toEqual([args, 2]);
      expect(stderr.split('\n')).toHaveLength(2);
      expect(stderr).not.toMatch(/^pmu (\w+): .*\bpmu \1 (needs|--)/);
      expect(stderr).not.toMatch(/Unknown option|To specify a positional|argument missing|ERR_PARSE_ARGS/);
    }
  });
});

describe('sizes', () => {
  test('MB and GB are decimal, MiB and GiB binary, bare bytes plain', () => {
    expect(parseSize('--size', '1MB')).toBe(1_000_000);
    expect(parseSize('--size', '1GB')).toBe(1_000_000_000);
    expect(parseSize('--size', '64kB')).toBe(64_000);
    expect(parseSize('--size', '1MiB')).toBe(1 << 20);
    expect(parseSize('--size', '16mib')).toBe(16 << 20);
    expect(parseSize('--size', '1.5GiB')).toBe(1.5 * 2 ** 30);
    expect(parseSize('--size', '4096')).toBe(4096);
    expect(parseSize('--size', '4096B')).toBe(4096);
  });

  test('K, M, G alone are refused with both readings; nonsense with the forms it takes', () => {
    expect(() => parseSize('--size', '16M')).toThrow('--size 16M is ambiguous: write 16MiB (16777216 bytes) or 16MB (16000000 bytes)');
    expect(() => parseSize('--capacity', '1g')).toThrow('--capacity 1g is ambiguous: write 1GiB (1073741824 bytes) or 1GB (1000000000 bytes)');
    expect(() => parseSize('--size', '1.5')).toThrow(/must be a byte count such as 4096, 64KiB, 16MiB or 1GB/);
    expect(() => parseSize('--size', 'lots')).toThrow(/KB, MB, GB are powers of 1000; KiB, MiB, GiB of 1024/);
  });

  test('pmu serve --size 1MB makes a unit of 1,000,000 bytes rounded up to a page, not 1 MiB', async () => {
    const dir = tempDir();
    const server = spawn(process.execPath, [PMU, 'serve', '--no-tcp', '--size', '1MB'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      await waitForLine(server, /connect with/);
      expect(fs.statSync(path.join(dir, 'pmu-data', 'unit.pmu')).size).toBe(Math.ceil(1_000_000 / 4096) * 4096);
    } finally {
      server.kill('SIGINT');
      await waitForExit(server);
    }
  });
});

describe('hints that name the fix', () => {
  test('nothing listening: is `pmu serve` running there?', async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const result = pmu(['region', 'list', '--url', `tcp://127.0.0.1:${port}`, '--user', 'a', '--secret', 'b']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`is \`pmu serve\` running at tcp://127.0.0.1:${port}? start it with \`pmu serve\``);
    const unix = pmu(['region', 'list', '--url', 'unix:/nonexistent/pmu.sock', '--user', 'a', '--secret', 'b']);
    expect(unix.stderr).toContain('is `pmu serve` running at unix:/nonexistent/pmu.sock?');
  });

  test('PMU_USER without PMU_SECRET says exactly that, whether or not the credential file exists', async () => {
    const dir = tempDir();
    const server = spawn(process.execPath, [PMU, 'serve', '--no-tcp', '--size', '1MiB'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      await waitForLine(server, /connect with/);
      const credential = path.join(dir, 'pmu-data', 'admin.credential.json');
      const present = pmu(['region', 'list'], { cwd: dir, env: { PMU_USER: 'backup' } });
      expect(present.code).toBe(2);
      expect(present.stderr).toBe(`pmu region: PMU_USER is 'backup' but no secret is given (${credential} holds the secret of 'admin', not of 'backup'): set PMU_SECRET or pass --secret, or unset PMU_USER to use the admin credential (pmu help region)\n`);
      const absent = pmu(['region', 'list'], { cwd: tempDir(), env: { PMU_USER: 'backup' } });
      expect(absent.stderr).toMatch(/^pmu region: PMU_USER is 'backup' but no secret is given \(there is no \S+admin\.credential\.json to read one from\)/);
      // The admin's own name takes its secret from the credential, as before.
      expect(pmu(['region', 'list'], { cwd: dir, env: { PMU_USER: 'admin' } })).toMatchObject({ code: 0 });
    } finally {
      server.kill('SIGINT');
      await waitForExit(server);
    }
  });
});

describe('stopping pmu serve', () => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    test(`${signal}: finishes, removes its pid file, exits 0`, async () => {
      const dir = tempDir();
      const server = spawn(process.execPath, [PMU, 'serve', '--no-tcp', '--size', '1MiB'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      server.stdout!.on('data', (chunk) => (stdout += chunk));
      await waitForLine(server, /connect with/);
      server.kill(signal);
      expect(await waitForExit(server)).toEqual({ code: 0, signal: null });
      expect(stdout).toMatch(/pmu: stopped\n$/);
      expect(fs.readdirSync(path.join(dir, 'pmu-data')).sort()).toEqual(['admin.credential.json', 'unit.pmu', 'users.json']);
    });
  }

  test('under npx, a SIGTERM to npm stops the server too (npm does not pass it through its shell)', async () => {
    const project = tempDir();
    fs.writeFileSync(path.join(project, 'package.json'), '{"name":"app","version":"1.0.0"}');
    fs.mkdirSync(path.join(project, 'node_modules', '.bin'), { recursive: true });
    fs.symlinkSync(ROOT, path.join(project, 'node_modules', 'pmu'));
    fs.symlinkSync('../pmu/bin/pmu.js', path.join(project, 'node_modules', '.bin', 'pmu'));
    const npx = spawn('npx', ['--no-install', 'pmu', 'serve', '--no-tcp', '--size', '1MiB'], { cwd: project, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    npx.stdout!.on('data', (chunk) => (stdout += chunk));
    try {
      await waitForLine(npx, /connect with/, 30_000);
      const pidFile = path.join(project, 'pmu-data', 'pmu.pid');
      const serverPid = Number(fs.readFileSync(pidFile, 'utf8').split(/\s/)[0]);
      npx.kill('SIGTERM');
      await waitForExit(npx);
      // The server, reparented, notices and stops cleanly on its own.
      const { waitFor } = await import('./helpers/wait');
      await waitFor('the server to stop', () => !fs.existsSync(`/proc/${serverPid}`), 10_000);
      expect(fs.existsSync(pidFile)).toBe(false);
    } finally {
      if (npx.exitCode === null) npx.kill('SIGKILL');
    }
  });
});
