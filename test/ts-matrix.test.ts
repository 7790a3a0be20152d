/**
 * pmu as a TypeScript app meets it, in each module system and module resolution: ES module
 * projects compiled with node16, nodenext and bundler, CommonJS projects with node16, nodenext
 * and node10, all `strict` with `skipLibCheck: false` (pmu's own .d.ts files are checked too).
 * Each compiles a one-node StateGraph with `checkpointer: saver`, a PmuSaver on an embedded
 * region (which fails with TS2322 where pmu/langgraph's types pull in LangChain's other build),
 * and a `new PmuSaver(region)` that must not compile (the constructor is private); then runs it:
 * the saver is an instance of the app's own BaseCheckpointSaver, the graph runs one step and
 * checkpoints it, and a PmuError from the saver is an instance of the PmuError of 'pmu'.
 * The projects depend on this checkout by symlink, as test/readme.test.ts's do; this checkout's
 * tsc compiles them, the ES module and the CommonJS projects in parallel. ~30 s.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { removeTempDirs, tempDir } from './helpers/temp';
import { waitForExit } from './helpers/wait';

const REPO = path.join(__dirname, '..');
const TSC = path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');

afterAll(removeTempDirs);

/** The app: the same source in both module systems (tsc turns its imports into requires for CommonJS). */
const APP = `import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Annotation, END, START, StateGraph } from '@langchain/langgraph';
import { BaseCheckpointSaver } from '@langchain/langgraph-checkpoint';
import { PersistentMemoryUnit, PmuError } from 'pmu';
import type { Region } from 'pmu';
import { PmuSaver } from 'pmu/langgraph';
import { MirroredRegion } from 'pmu/mirror';
import { FrameReader } from 'pmu/wire';

const State = Annotation.Root({ count: Annotation<number>({ reducer: (_, next) => next, default: () => 0 }) });

/** Never called: it only has to fail to compile. */
export function construct(region: Region): PmuSaver {
  // @ts-expect-error PmuSaver's constructor is private: PmuSaver.open() and PmuSaver.standby() make savers.
  return new PmuSaver(region);
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pmu-ts-app-'));
  const unit = PersistentMemoryUnit.open(path.join(dir, 'graph.pmu'), { size: 16 << 20 });
  const saver = await PmuSaver.open(unit.createRegion('graph', 1 << 20));
  const base: BaseCheckpointSaver = saver;
  const graph = new StateGraph(State)
    .addNode('work', (state) => ({ count: state.count + 1 }))
    .addEdge(START, 'work')
    .addEdge('work', END)
    .compile({ checkpointer: saver });
  const config = { configurable: { thread_id: 'thread-1' } };
  const result = await graph.invoke({}, config);
  const tuple = await base.getTuple(config);
  let pmuError: unknown;
  try {
    await saver.getTuple({ configurable: { thread_id: '\\uD800' } });
  } catch (error) {
    pmuError = error instanceof PmuError ? error.code : error;
  }
  await saver.close();
  await unit.close();
  fs.rmSync(dir, { recursive: true, force: true });
  console.log(JSON.stringify({
    instanceOfBase: saver instanceof BaseCheckpointSaver,
    result: result.count,
    checkpointed: tuple?.checkpoint.channel_values,
    step: tuple?.metadata?.step,
    pmuError,
    mirror: typeof MirroredRegion,
    wire: typeof FrameReader,
  }));
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
`;

interface Variant {
  name: string;
  module: string;
  moduleResolution: string;
}

const MODES: Record<'esm' | 'cjs', Variant[]> = {
  esm: [
    { name: 'node16', module: 'node16', moduleResolution: 'node16' },
    { name: 'nodenext', module: 'nodenext', moduleResolution: 'nodenext' },
    { name: 'bundler', module: 'esnext', moduleResolution: 'bundler' },
  ],
  // bundler resolution takes ES module syntax only (module esnext or preserve); node10 is the
  // resolution of older CommonJS projects, which ignores "exports" (typesVersions serves it).
  cjs: [
    { name: 'node16', module: 'node16', moduleResolution: 'node16' },
    { name: 'nodenext', module: 'nodenext', moduleResolution: 'nodenext' },
    { name: 'node10', module: 'commonjs', moduleResolution: 'node10' },
  ],
};

/** A project depending on this checkout, with one tsconfig per variant, each compiling src/app.ts to out-NAME/. */
function project(mode: 'esm' | 'cjs'): string {
  const dir = tempDir(`pmu-ts-${mode}-`);
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(REPO, path.join(dir, 'node_modules', 'pmu'));
  for (const scope of ['@langchain', '@types']) fs.symlinkSync(path.join(REPO, 'node_modules', scope), path.join(dir, 'node_modules', scope));
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: `ts-${mode}-user`, private: true, type: mode === 'esm' ? 'module' : 'commonjs' }, null, 2));
  fs.mkdirSync(path.join(dir, 'src'));
  fs.writeFileSync(path.join(dir, 'src', 'app.ts'), APP);
  for (const variant of MODES[mode]) {
    const compilerOptions = {
      target: 'ES2022',
      lib: ['ES2022'],
      types: ['node'],
      module: variant.module,
      moduleResolution: variant.moduleResolution,
      strict: true,
      skipLibCheck: false,
      rootDir: 'src',
      outDir: `out-${variant.name}`,
      ignoreDeprecations: '6.0',
    };
    fs.writeFileSync(path.join(dir, `tsconfig.${variant.name}.json`), JSON.stringify({ compilerOptions, include: ['src'] }, null, 2));
  }
  return dir;
}

async function run(args: string[], cwd: string, timeoutMs: number) {
  const child: ChildProcess = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
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

const dirs = { esm: '', cjs: '' };
let compiled: Promise<Array<{ mode: 'esm' | 'cjs'; code: number | null; stdout: string; stderr: string }>>;

beforeAll(() => {
  dirs.esm = project('esm');
  dirs.cjs = project('cjs');
  // The ES module and the CommonJS project at once, each in one tsc process (tsc -b, a project per variant).
  compiled = Promise.all(
    (['esm', 'cjs'] as const).map(async (mode) => {
      const result = await run([TSC, '-b', '--verbose', '--pretty', 'false', ...MODES[mode].map((v) => `tsconfig.${v.name}.json`)], dirs[mode], 120_000);
      return { mode, ...result };
    }),
  );
  compiled.catch(() => undefined);
});

const expected = { instanceOfBase: true, result: 1, checkpointed: { count: 1 }, step: 1, pmuError: 'EINVAL', mirror: 'function', wire: 'function' };

/**
 * tsc -b --verbose's output, split by project: the lines each printed (its errors), by variant name.
 * --pretty false keeps an error on one line, its elaboration on the indented lines after it.
 */
function errorsByVariant(output: string): Record<string, string[]> {
  const errors: Record<string, string[]> = {};
  let current: string | undefined;
  for (const line of output.split('\n')) {
    const building = /Building project '.*tsconfig\.(\w+)\.json'/.exec(line);
    if (building) errors[(current = building[1])] = [];
    else if (current !== undefined && line.trim() !== '' && !/ - (Project '|Updating |Skipping )/.test(line)) errors[current].push(line);
  }
  return errors;
}

/**
 * Not pmu's: @langchain/core's own CommonJS types (language_models/base.d.cts) import
 * js-tiktoken/lite, which has ES module types only, and module node16 (Node 16's require, which
 * cannot load an ES module) refuses that in a lib check. nodenext (Node 22's require(esm)) takes it.
 */
const LANGCHAIN_NODE16_CJS = /node_modules\/@langchain\/core\/dist\/\S+\.d\.cts\(\d+,\d+\): error TS1479: .*js-tiktoken/;

describe.each(['esm', 'cjs'] as const)('a TypeScript %s project', (mode) => {
  test(`compiles with ${MODES[mode].map((v) => v.name).join(', ')} resolution, strict, lib check on`, async () => {
    const result = (await compiled).find((r) => r.mode === mode)!;
    expect(result.stderr).toBe('');
    const errors = errorsByVariant(result.stdout);
    expect(Object.keys(errors).sort()).toEqual(MODES[mode].map((v) => v.name).sort());
    const upstream = mode === 'cjs' ? errors.node16.filter((line) => LANGCHAIN_NODE16_CJS.test(line)) : [];
    for (const name of Object.keys(errors)) errors[name] = errors[name].filter((line) => !LANGCHAIN_NODE16_CJS.test(line));
    expect(errors).toEqual(Object.fromEntries(MODES[mode].map((v) => [v.name, []])));
    // tsc's exit status 2: errors, outputs written anyway; anything else with no error above is a failure of its own.
    expect(result.code).toBe(upstream.length > 0 ? 2 : 0);
  }, 120_000);

  test.each(MODES[mode].map((v) => v.name))('runs as compiled with %s: the saver is a BaseCheckpointSaver, the graph checkpoints one step', async (name) => {
    await compiled;
    const main = path.join(dirs[mode], `out-${name}`, 'app.js');
    const ran = await run([main], dirs[mode], 30_000);
    expect({ code: ran.code, stderr: ran.stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(ran.stdout)).toEqual(expected);
  }, 120_000);
});
