/**
 * The musl prebuilds (linux-x64 natively, linux-arm64 under qemu-user), loaded and used in a musl
 * process: npm has no musl Node, so the runtime is Bun's musl build (another N-API
 * implementation) under Debian's musl loader, set up by scripts/musl-runtime.sh. The package's
 * own dist/ code finds pmu's addon through node-gyp-build (LIBC=musl, as /etc/alpine-release
 * would make it on Alpine; PMU_PREBUILD points it at a directory holding only prebuilds/),
 * creates a unit, writes durably, reads back and checks a CRC32C; the floor addon's musl build
 * loads beside it. /proc/self/maps shows the process ran on musl's libc and no glibc. What it
 * does not prove: that Node itself on Alpine loads them (Bun's N-API is its own). Needs
 * `npm run prebuilds` and scripts/musl-runtime.sh x64 / arm64 (all done by .ci/run); skipped
 * loudly elsewhere. ~1 s for x64, ~5 s under qemu.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { removeTempDirs, tempDir } from './helpers/temp';

const REPO = path.join(__dirname, '..');

afterAll(removeTempDirs);

const SCRIPT = `
const fs = require('node:fs');
const path = require('node:path');
const pmu = require(process.env.PMU_DIST);
const unit = pmu.PersistentMemoryUnit.open(path.join(process.env.WORK, 'musl.pmu'), { size: 4 << 20 });
const region = unit.ensureRegion('r', 65536);
(async () => {
  await region.write(100, Buffer.from('written on musl'));
  const back = (await region.read(100, 15)).toString();
  const crc = pmu.crc32c(Buffer.from('123456789')).toString(16);
  await unit.close();
  const floor = typeof require(process.env.FLOOR).measureFloor;
  const maps = fs.readFileSync('/proc/self/maps', 'utf8').split('\\n').map((l) => l.split(/\\s+/)[5]).filter(Boolean);
  const libcs = [...new Set(maps.filter((f) => /\\/(libc[.-]|ld-musl|ld-linux)/.test(f)))];
  const addon = maps.some((f) => f.endsWith('/prebuilds/linux-' + process.arch + '/pmu.musl.node'));
  process.stdout.write(JSON.stringify({ bun: typeof process.versions.bun, arch: process.arch, addon, libcs, back, crc, floor }));
})().catch((error) => { console.error(error); process.exitCode = 1; });
`;

describe.each([
  { arch: 'x64', machine: 'x86_64' },
  { arch: 'arm64', machine: 'aarch64' },
])('linux-$arch musl', ({ arch, machine }) => {
  const prebuild = path.join(REPO, 'prebuilds', `linux-${arch}`, 'pmu.musl.node');
  const floor = path.join(REPO, 'prebuilds', `linux-${arch}`, 'floor', 'pmu_floor.musl.node');
  const root = process.env[`PMU_MUSL_${arch.toUpperCase()}_ROOT`] ?? `/var/cache/pmu/musl-${arch}`;
  const run = path.join(root, 'run');
  const missing = [
    process.arch !== 'x64' && 'an x64 machine',
    !fs.existsSync(prebuild) && `the ${arch} musl prebuild (npm run prebuilds)`,
    !fs.existsSync(run) && `a musl runtime in ${root} (bash scripts/musl-runtime.sh ${arch}, as root)`,
  ].filter(Boolean);

  (missing.length > 0 && process.env.CI !== 'true' ? test.skip : test)(`a musl process loads the ${arch} musl prebuild and uses it`, () => {
    const work = tempDir('pmu-musl-');
    // What node-gyp-build sees of an installed package: prebuilds/ only, no build/.
    const packageDir = path.join(work, 'package');
    fs.mkdirSync(path.join(packageDir, 'prebuilds', `linux-${arch}`), { recursive: true });
    fs.copyFileSync(prebuild, path.join(packageDir, 'prebuilds', `linux-${arch}`, 'pmu.musl.node'));
    fs.writeFileSync(path.join(work, 'check.js'), SCRIPT);
    const result = spawnSync(run, [path.join(work, 'check.js')], {
      encoding: 'utf8',
      timeout: 120_000,
      env: { ...process.env, PMU_PREBUILD: packageDir, PMU_DIST: path.join(REPO, 'dist'), FLOOR: floor, WORK: work },
    });
    expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: '' });
    const seen = JSON.parse(result.stdout);
    expect(seen).toEqual({ bun: 'string', arch, addon: true, libcs: [expect.stringMatching(new RegExp(`/${machine}-linux-musl/libc\\.so$`))], back: 'written on musl', crc: 'e3069283', floor: 'function' });
  });

  if (missing.length > 0 && process.env.CI !== 'true') {
    console.warn(`SKIPPED test/prebuild-musl.test.ts (linux-${arch}): missing ${missing.join('; ')}`);
  }
});
