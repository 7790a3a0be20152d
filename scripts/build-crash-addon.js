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
  hash.update(fs.readFileSync(path.join(root, 'binding.gyp')));
  for (const dir of ['native/core', 'native/binding', 'native/crash']) {
    for (const name of fs.readdirSync(path.join(root, dir)).sort()) {
      if (!/\.(cpp|h|gyp)$/.test(name)) continue;
      hash.update(name);
      hash.update(fs.readFileSync(path.join(root, dir, name)));
    }
  }
  return hash.digest('hex');
}

/** The normal addon's sources (binding.gyp, target 'pmu'), as paths from native/crash/. */
function normalSources() {
  const gyp = JSON.parse(fs.readFileSync(path.join(root, 'binding.gyp'), 'utf8').replace(/^\s*#.*$/gm, ''));
  const target = gyp.targets.find((t) => t.target_name === 'pmu');
  return target.sources.map((source) => path.posix.join('../..', source));
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

if (require.main === module && process.argv[2] === '--sources') {
  // For native/crash/binding.gyp: <!@(node ../../scripts/build-crash-addon.js --sources)
  console.log(normalSources().join(' '));
} else if (require.main === module) {
  const started = Date.now();
  console.log(`${build()} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}
