/**
 * The cross-built linux-arm64 glibc prebuild (zig, aarch64-linux-gnu.2.28: scripts/prebuild.sh),
 * loaded and used by an arm64 Node (Debian's, glibc 2.36) under qemu-user: the
 * package's own dist/ code finds it through node-gyp-build (PMU_PREBUILD points the loader at a
 * directory holding only prebuilds/, as an installed package has), creates a unit, writes
 * durably, reads back and checks a CRC32C; the floor addon's arm64 glibc build loads too. Needs `npm run prebuilds`, qemu-user-static and
 * scripts/arm64-node-root.sh (all done by .ci/run); skipped loudly elsewhere. ~10 s under qemu.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { removeTempDirs, tempDir } from './helpers/temp';

const REPO = path.join(__dirname, '..');
const PREBUILD = path.join(REPO, 'prebuilds', 'linux-arm64', 'pmu.glibc.node');
const ROOT = process.env.PMU_ARM64_ROOT ?? '/var/cache/pmu/arm64-node';
const QEMU = ['/usr/bin/qemu-aarch64-static', '/usr/bin/qemu-aarch64'].find((file) => fs.existsSync(file));

const missing = [
  !fs.existsSync(PREBUILD) && 'the arm64 prebuild (npm run prebuilds)',
  !QEMU && 'qemu-user (apt-get install -y qemu-user-static)',
  !fs.existsSync(path.join(ROOT, 'usr', 'bin', 'node')) && `an arm64 node in ${ROOT} (bash scripts/arm64-node-root.sh, as root)`,
].filter(Boolean);

afterAll(removeTempDirs);

const SCRIPT = `
const path = require('node:path');
const pmu = require(process.env.PMU_DIST);
const unit = pmu.PersistentMemoryUnit.open(path.join(process.env.WORK, 'arm64.pmu'), { size: 4 << 20 });
const region = unit.ensureRegion('r', 65536);
(async () => {
  await region.write(100, Buffer.from('written on arm64'));
  const back = (await region.read(100, 16)).toString();
  const crc = pmu.crc32c(Buffer.from('123456789')).toString(16);
  await unit.close();
  const floor = typeof require(process.env.FLOOR).measureFloor;
  process.stdout.write(JSON.stringify({ arch: process.arch, back, crc, floor }));
})().catch((error) => { console.error(error); process.exitCode = 1; });
`;

(missing.length > 0 && process.env.CI !== 'true' ? test.skip : test)('an arm64 Node loads the cross-built prebuild and uses it', () => {
  const work = tempDir('pmu-arm64-');
  // What node-gyp-build sees of an installed package: prebuilds/ only, no build/.
  const packageDir = path.join(work, 'package');
  fs.mkdirSync(path.join(packageDir, 'prebuilds', 'linux-arm64'), { recursive: true });
  fs.copyFileSync(PREBUILD, path.join(packageDir, 'prebuilds', 'linux-arm64', 'pmu.glibc.node'));
  fs.writeFileSync(path.join(work, 'check.js'), SCRIPT);
  const result = spawnSync(QEMU!, ['-L', ROOT, path.join(ROOT, 'usr', 'bin', 'node'), path.join(work, 'check.js')], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, PMU_PREBUILD: packageDir, PMU_DIST: path.join(REPO, 'dist'), FLOOR: path.join(REPO, 'prebuilds', 'linux-arm64', 'floor', 'pmu_floor.glibc.node'), WORK: work },
  });
  expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: '' });
  expect(JSON.parse(result.stdout)).toEqual({ arch: 'arm64', back: 'written on arm64', crc: 'e3069283', floor: 'function' });
});

if (missing.length > 0 && process.env.CI !== 'true') {
  console.warn(`SKIPPED test/prebuild-arm64.test.ts: missing ${missing.join('; ')}`);
}
