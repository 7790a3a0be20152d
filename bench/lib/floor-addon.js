'use strict';
/**
 * The one loader of the bench's floor addon (native/floor: measureFloor, memcpy + msync timed
 * in C). pmu's own addon carries no benchmark; this one is the bench's alone.
 * - In a clone (native/floor/binding.gyp is here): built from those sources on demand, unless
 *   the build on disk was made from the current ones (a source hash stamp, as
 *   scripts/build-crash-addon.js does), through `npm run build:floor` so node-gyp gets npm's
 *   config (nodedir).
 * - In an installed package (no floor sources, maybe no compiler, maybe a read-only
 *   node_modules): the prebuilt prebuilds/linux-ARCH/floor/pmu_floor.LIBC.node that
 *   scripts/prebuild.sh put in the package, LIBC chosen as node-gyp-build chooses pmu's own
 *   (musl where $LIBC says so or /etc/alpine-release exists, else glibc). It sits in a
 *   subdirectory so that node-gyp-build, looking for pmu's own addon in prebuilds/linux-ARCH/,
 *   never picks it.
 * When neither works, the suites leave out their floor rows and the run says why in one note;
 * pmu's own rows still run.
 *   node bench/lib/floor-addon.js   builds it if needed and prints its path (npm test's pretest)
 */
const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..', '..');
const sourceDir = path.join(root, 'native', 'floor');
const built = path.join(sourceDir, 'build', 'Release', 'pmu_floor.node');
const stampFile = path.join(sourceDir, 'build', 'sources.sha256');
const libc = process.env.LIBC || (fs.existsSync('/etc/alpine-release') ? 'musl' : 'glibc');
const prebuilt = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'floor', `pmu_floor.${libc}.node`);

function sourcesHash() {
  const hash = crypto.createHash('sha256');
  for (const name of fs.readdirSync(sourceDir).sort()) {
    if (!/\.(cpp|h|gyp)$/.test(name)) continue;
    hash.update(name);
    hash.update(fs.readFileSync(path.join(sourceDir, name)));
  }
  return hash.digest('hex');
}

/** Builds native/floor unless the build on disk matches its sources; returns the addon's path. */
function build() {
  const stamp = sourcesHash();
  if (fs.existsSync(built) && fs.existsSync(stampFile) && fs.readFileSync(stampFile, 'utf8') === stamp) return built;
  try {
    execFileSync('npm', ['run', '--silent', 'build:floor'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  } catch (error) {
    const how = error.status != null ? `exited ${error.status}` : error.message.split('\n')[0];
    throw new Error(`building it from native/floor failed (npm run build:floor ${how}; compiler output above)`);
  }
  fs.writeFileSync(stampFile, stamp);
  return built;
}

let result;

/** { addon } or { reason }: looked up once per process. */
function load() {
  if (result) return result;
  const inClone = fs.existsSync(path.join(sourceDir, 'binding.gyp'));
  try {
    if (inClone) {
      result = { addon: require(build()) };
    } else if (fs.existsSync(prebuilt)) {
      result = { addon: require(prebuilt) };
    } else {
      result = { reason: `this install has no prebuilt floor addon for ${process.platform}-${process.arch} (${path.relative(root, prebuilt)}) and no sources to build one` };
    }
  } catch (error) {
    const what = inClone ? '' : `the prebuilt ${path.relative(root, prebuilt)} does not load here: `;
    result = { reason: what + error.message.split('\n')[0] };
  }
  return result;
}

let noted = false;

/**
 * The floor addon, or undefined once the run has been told why not: the first call without it
 * adds one note to the report (ctx.note), later ones add nothing. Without ctx (a child process
 * of a suite that asked first), undefined says nothing.
 */
function floorAddon(ctx) {
  const { addon, reason } = load();
  if (addon) return addon;
  if (ctx && !noted) {
    noted = true;
    ctx.note(`floor rows skipped (memcpy + msync timed in C, the bench's floor addon): ${reason}; pmu's own rows ran`);
  }
  return undefined;
}

/** For the standalone tools: the floor addon, or an Error saying why it is not available. */
function requireFloorAddon() {
  const { addon, reason } = load();
  if (!addon) throw new Error(`the bench's floor addon is not available: ${reason}`);
  return addon;
}

module.exports = { floorAddon, requireFloorAddon, build, builtPath: built, prebuiltPath: prebuilt };

if (require.main === module) {
  const started = Date.now();
  console.log(`${build()} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}
