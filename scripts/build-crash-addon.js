#!/usr/bin/env node
'use strict';
/**
 * Builds the crash-recording addon (native/crash/binding.gyp) unless the build on disk was made
 * from the current sources. Prints the addon's path. Used by test/crash-states.test.ts and
 * scripts/crash-states.js, so a fresh clone needs nothing beyond `npm ci`.
 */
const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const out = path.join(root, 'native/crash/build/Release/pmu_crash.node');
const stampFile = path.join(root, 'native/crash/build/sources.sha256');

function sourcesHash() {
  const hash = crypto.createHash('sha256');
  for (const dir of ['native/core', 'native/binding', 'native/crash']) {
    for (const name of fs.readdirSync(path.join(root, dir)).sort()) {
      if (!/\.(cpp|h|gyp)$/.test(name)) continue;
      hash.update(name);
      hash.update(fs.readFileSync(path.join(root, dir, name)));
    }
  }
  return hash.digest('hex');
}

function build() {
  const stamp = sourcesHash();
  if (fs.existsSync(out) && fs.existsSync(stampFile) && fs.readFileSync(stampFile, 'utf8') === stamp) return out;
  // Through npm, which puts its own node-gyp on PATH and passes its config (nodedir) along.
  execFileSync('npm', ['run', '--silent', 'build:crash'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  fs.writeFileSync(stampFile, stamp);
  return out;
}

module.exports = { build, addonPath: out };

if (require.main === module) {
  const started = Date.now();
  console.log(`${build()} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}
