'use strict';
/**
 * The ES module entry points, made after the CommonJS build (tsc -p tsconfig.build.json), which
 * they stand on. Usage: node scripts/build-esm.js (npm run build and prepack run it).
 *
 * Only pmu/langgraph is compiled twice. @langchain/langgraph-checkpoint ships an ES module and a
 * CommonJS build, and an app gets the one of its own module system: PmuSaver must extend that
 * one's BaseCheckpointSaver, or LangGraph's types call the two unrelated (TS2322) and
 * `saver instanceof BaseCheckpointSaver` is false. So lib/langgraph is emitted a second time as
 * ES modules into dist/langgraph-esm/ (a "type": "module" folder), and nothing else is: the
 * relative imports it makes of the core (../unit/errors.js, ../checkpoint/index.js) land, from
 * that folder as from dist/langgraph/, on the CommonJS build in dist/. There is one core in a
 * process whichever way it is loaded: one addon, one PmuError class for `instanceof`.
 *
 * 'pmu', 'pmu/mirror' and 'pmu/wire' have no LangChain classes in them: their ES module entry
 * points (index.mjs, index.d.mts) re-export the CommonJS build, for the same reason.
 *
 * --if-changed (test/helpers/global-setup.js): does nothing when every output is newer than
 * every file under lib/, the tsconfigs and this script.
 */
const fs = require('node:fs');
const path = require('node:path');
const ts = require('typescript');

const ROOT = path.resolve(__dirname, '..');
const DIST = path.join(ROOT, 'dist');
const LANGGRAPH = path.join(ROOT, 'lib', 'langgraph') + path.sep;
const ESM_DIR = path.join(DIST, 'langgraph-esm');

function fail(diagnostics) {
  const host = { getCanonicalFileName: (f) => f, getCurrentDirectory: () => ROOT, getNewLine: () => '\n' };
  process.stderr.write(process.stderr.isTTY ? ts.formatDiagnosticsWithColorAndContext(diagnostics, host) : ts.formatDiagnostics(diagnostics, host));
  process.exit(1);
}

const WRAPPERS = ['index', 'mirror/index', 'wire/index'];

function newestInput() {
  let newest = 0;
  const visit = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) visit(file);
      else newest = Math.max(newest, fs.statSync(file).mtimeMs);
    }
  };
  visit(path.join(ROOT, 'lib'));
  for (const file of ['tsconfig.json', 'tsconfig.build.json', 'tsconfig.esm.json', 'scripts/build-esm.js']) newest = Math.max(newest, fs.statSync(path.join(ROOT, file)).mtimeMs);
  return newest;
}

function oldestOutput() {
  const outputs = WRAPPERS.flatMap((entry) => [`${entry}.mjs`, `${entry}.d.mts`].map((file) => path.join(DIST, file)));
  if (fs.existsSync(ESM_DIR)) outputs.push(...fs.readdirSync(ESM_DIR).map((file) => path.join(ESM_DIR, file)));
  outputs.push(path.join(ESM_DIR, 'package.json'), path.join(ESM_DIR, 'index.js'));
  let oldest = Infinity;
  for (const file of outputs) oldest = Math.min(oldest, fs.existsSync(file) ? fs.statSync(file).mtimeMs : 0);
  return oldest;
}

if (process.argv.includes('--if-changed') && oldestOutput() > newestInput()) process.exit(0);

const parsed = ts.getParsedCommandLineOfConfigFile(path.join(ROOT, 'tsconfig.esm.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => fail([d]) });
if (parsed.errors.length > 0) fail(parsed.errors);
if (!fs.existsSync(path.join(DIST, 'index.js'))) {
  process.stderr.write('build-esm: dist/index.js is missing: run tsc -p tsconfig.build.json first\n');
  process.exit(1);
}
// The whole program (lib/langgraph and the core it imports) is type-checked as ES modules...
const program = ts.createProgram({ rootNames: parsed.fileNames, options: parsed.options });
const diagnostics = ts.getPreEmitDiagnostics(program);
if (diagnostics.length > 0) fail(diagnostics);

// ...and only lib/langgraph is emitted, from dist/langgraph/ (outDir dist, rootDir lib) to dist/langgraph-esm/.
fs.rmSync(ESM_DIR, { recursive: true, force: true });
const fromDir = path.join(DIST, 'langgraph') + path.sep;
const writeFile = (file, text) => {
  const resolved = path.resolve(file);
  if (!resolved.startsWith(fromDir)) throw new Error(`build-esm: unexpected output ${resolved}`);
  const target = path.join(ESM_DIR, resolved.slice(fromDir.length));
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.writeFileSync(target, text);
};
for (const source of program.getSourceFiles()) {
  if (!path.resolve(source.fileName).startsWith(LANGGRAPH)) continue;
  const result = program.emit(source, writeFile);
  if (result.diagnostics.length > 0) fail(result.diagnostics);
  if (result.emitSkipped) throw new Error(`build-esm: nothing emitted for ${source.fileName}`);
}
fs.writeFileSync(path.join(ESM_DIR, 'package.json'), '{\n  "type": "module"\n}\n');

// The core's ES module faces: the CommonJS build's exports, and module.exports as the default
// (as `import pmu from 'pmu'` gave before there was an ES module entry).
for (const entry of WRAPPERS) {
  const base = `./${path.basename(entry)}.js`;
  const text = `// ES module entry point: the CommonJS build, re-exported (one instance of it; scripts/build-esm.js).\nexport * from '${base}';\nexport { default } from '${base}';\n`;
  fs.writeFileSync(path.join(DIST, `${entry}.mjs`), text);
  fs.writeFileSync(path.join(DIST, `${entry}.d.mts`), text);
}
