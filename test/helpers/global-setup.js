'use strict';
/**
 * Before any test: bring dist/ up to date with lib/ (an incremental tsc, a second or two when
 * nothing changed). Tests import lib/ through ts-jest, but child processes (bin/pmu.js, the
 * soak, nemesis and crash scripts, fixtures) run the compiled package: without this, `npx jest
 * FILE` would run them against whatever build was left on disk.
 */
const { execFileSync } = require('node:child_process');
const path = require('node:path');

module.exports = async function buildDist() {
  const root = path.resolve(__dirname, '../..');
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
  // The ES module entry points (scripts/build-esm.js), if lib/ changed: ES module children import pmu/langgraph from them.
  execFileSync(process.execPath, [path.join(root, 'scripts', 'build-esm.js'), '--if-changed'], { cwd: root, stdio: 'inherit' });
};
