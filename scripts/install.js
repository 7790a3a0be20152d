#!/usr/bin/env node
'use strict';
/**
 * npm's install step for pmu (the package's "install" script).
 *
 * In an installed package: use the prebuilt addon for this platform when one fits and loads
 * (prebuilds/, put in the package by `npm run prebuilds`); otherwise build it from source with
 * node-gyp. When the source build cannot run, or fails, the last line says what to install.
 *
 * In a clone (the TypeScript sources are here): always build the addon from source, then
 * compile the TypeScript into dist/, so `npm ci` / `npm install` leaves a working checkout.
 */
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const isClone = fs.existsSync(path.join(root, 'lib', 'index.ts')) && fs.existsSync(path.join(root, 'tsconfig.build.json'));
const INSTALL_HINT = 'Debian/Ubuntu: apt-get install -y python3 make g++; Alpine: apk add python3 make g++; Fedora: dnf install python3 make gcc-c++';

/** A prebuild that fits this platform and really loads here (right libc, new enough glibc). */
function prebuildLoads() {
  // PREBUILDS_ONLY makes node-gyp-build skip build/; it reads the variable when first required.
  process.env.PREBUILDS_ONLY = '1';
  try {
    const file = require('node-gyp-build').path(root);
    require(file);
    return file;
  } catch (error) {
    if (process.env.PMU_INSTALL_VERBOSE) process.stderr.write(`pmu: no usable prebuild: ${error.message}\n`);
    return undefined;
  } finally {
    delete process.env.PREBUILDS_ONLY;
  }
}

function onPath(name) {
  return (process.env.PATH || '').split(path.delimiter).some((dir) => {
    try {
      fs.accessSync(path.join(dir || '.', name), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** What node-gyp needs that this machine lacks. $CXX / $PYTHON count when they name a program. */
function missingTools() {
  const missing = [];
  const python = process.env.npm_config_python || process.env.PYTHON;
  if (!(python ? fs.existsSync(python) || onPath(python) : onPath('python3') || onPath('python'))) missing.push('python3');
  if (!onPath('make')) missing.push('make');
  const cxx = process.env.CXX;
  if (!(cxx ? fs.existsSync(cxx) || onPath(cxx) : onPath('g++') || onPath('c++') || onPath('clang++'))) missing.push('g++');
  return missing;
}

/** npm runs install scripts with its bundled node-gyp on PATH and in npm_config_node_gyp. */
function nodeGypCommand() {
  const bundled = process.env.npm_config_node_gyp;
  if (bundled && fs.existsSync(bundled)) return [process.execPath, bundled];
  if (onPath('node-gyp')) return ['node-gyp'];
  try {
    return [process.execPath, require.resolve('node-gyp/bin/node-gyp.js')];
  } catch {
    return undefined;
  }
}

function fail(line) {
  process.stderr.write(`${line}\n`);
  process.exit(1);
}

function buildFromSource(why) {
  const missing = missingTools();
  const platform = `${process.platform}-${process.arch}`;
  if (missing.length > 0) {
    fail(`pmu: ${why}; building the addon from source needs python3, make and g++: ${missing.join(', ')} missing here. Install them (${INSTALL_HINT}) and run npm rebuild pmu.`);
  }
  const gyp = nodeGypCommand();
  if (!gyp) fail('pmu: node-gyp was not found: install the package with npm (which brings node-gyp), or install node-gyp globally, then run npm rebuild pmu.');
  const result = spawnSync(gyp[0], [...gyp.slice(1), 'rebuild'], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) {
    fail(`pmu: building the addon from source failed on ${platform} (output above). It needs python3, make and a C++17 g++: install them (${INSTALL_HINT}) and run npm rebuild pmu.`);
  }
}

function compileTypeScript() {
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  if (!fs.existsSync(tsc)) fail('pmu: TypeScript is not installed in this clone: run npm install (it installs the dev dependencies).');
  const result = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) fail('pmu: the TypeScript compile failed (errors above).');
  // The ES module entry points (pmu/langgraph compiled a second time), on top of that build.
  const esm = spawnSync(process.execPath, [path.join(root, 'scripts', 'build-esm.js')], { cwd: root, stdio: 'inherit' });
  if (esm.status !== 0) fail('pmu: the ES module build failed (errors above).');
}

if (isClone) {
  buildFromSource('this is a clone: the addon is built from its sources');
  compileTypeScript();
} else if (process.env.npm_config_build_from_source === 'true') {
  buildFromSource('--build-from-source was asked for');
} else {
  const file = prebuildLoads();
  if (file) process.stdout.write(`pmu: using the prebuilt addon ${path.relative(root, file)}\n`);
  else buildFromSource(`no prebuilt addon fits or loads on ${process.platform}-${process.arch}`);
}
