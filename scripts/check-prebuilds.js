#!/usr/bin/env node
'use strict';
// Run by `npm pack` / `npm publish` (prepack), and by scripts/prebuild.sh and CI with --table.
// A package without its prebuilt addons would make every user compile (and leave `pmu bench`
// without its C floor rows: the floor addon's sources are not in the package), and a prebuild
// that needs a newer glibc or a libstdc++ than the README states fails to load there and falls
// back to a source build. So this refuses to pack unless each prebuild is there, is an ELF
// shared object for its machine, and stays within its floor:
//   *.glibc.node: needs only glibc's own libraries (libc, libm, libpthread, libdl, librt, the
//                 loader), no symbol version above GLIBC_2.28, and no GLIBCXX_ / CXXABI_ / GCC_
//                 version at all (no libstdc++, no libgcc_s: zig links its libc++ statically).
//   *.musl.node:  needs only musl's libc (libc.so / libc.musl-ARCH.so.1) and no versioned symbol
//                 (musl has none; a GLIBC_ version would mean a glibc build under a musl name).
// The floors are read from the ELF itself (.dynamic's DT_NEEDED and .gnu.version_r, parsed
// here: no binutils needed), so they cannot creep up unnoticed when the toolchain changes.
// --table prints what each file needs. PMU_PACK_WITHOUT_PREBUILDS=1 packs anyway (a local
// try-out), saying why it should not have.
const fs = require('node:fs');
const path = require('node:path');

const GLIBC_FLOOR = '2.28';
const PLATFORMS = [
  { dir: 'linux-x64', machine: 62 }, // EM_X86_64
  { dir: 'linux-arm64', machine: 183 }, // EM_AARCH64
];
// pmu's own addon, and the bench's floor addon (scripts/prebuild.sh, bench/lib/floor-addon.js),
// each for glibc and for musl.
const FILES = ['pmu.glibc.node', 'pmu.musl.node', 'floor/pmu_floor.glibc.node', 'floor/pmu_floor.musl.node'];
const EXPECTED = PLATFORMS.flatMap(({ dir, machine }) => FILES.map((name) => ({ dir, machine, file: `${dir}/${name}` })));

const GLIBC_LIBRARIES = /^(libc\.so\.6|libm\.so\.6|libpthread\.so\.0|libdl\.so\.2|librt\.so\.1|ld-linux-(x86-64|aarch64)\.so\.[12])$/;
const MUSL_LIBRARIES = /^(libc\.so|libc\.musl-(x86_64|aarch64)\.so\.1)$/;

/**
 * What a 64-bit little-endian ELF needs from the dynamic loader: its machine, its type, its
 * DT_NEEDED libraries and, per library, the symbol versions of .gnu.version_r (SHT_GNU_verneed).
 * Throws on anything that is not such an ELF.
 */
function readElf(buffer) {
  if (buffer.length < 64 || buffer.readUInt32BE(0) !== 0x7f454c46) throw new Error('not an ELF file');
  if (buffer[4] !== 2 || buffer[5] !== 1) throw new Error('not a 64-bit little-endian ELF');
  const type = buffer.readUInt16LE(16);
  const machine = buffer.readUInt16LE(18);
  const shoff = Number(buffer.readBigUInt64LE(40));
  const shentsize = buffer.readUInt16LE(58);
  const shnum = buffer.readUInt16LE(60);
  if (shoff === 0 || shnum === 0 || shoff + shnum * shentsize > buffer.length) throw new Error('no section headers');
  const sections = [];
  for (let i = 0; i < shnum; i++) {
    const at = shoff + i * shentsize;
    sections.push({
      type: buffer.readUInt32LE(at + 4),
      offset: Number(buffer.readBigUInt64LE(at + 24)),
      size: Number(buffer.readBigUInt64LE(at + 32)),
      link: buffer.readUInt32LE(at + 40),
      info: buffer.readUInt32LE(at + 44),
    });
  }
  const string = (section, offset) => {
    const start = section.offset + offset;
    const end = buffer.indexOf(0, start);
    return buffer.toString('latin1', start, end < 0 ? undefined : end);
  };
  const needed = [];
  const dynamic = sections.find((s) => s.type === 6); // SHT_DYNAMIC
  if (dynamic) {
    const strtab = sections[dynamic.link];
    for (let at = dynamic.offset; at + 16 <= dynamic.offset + dynamic.size; at += 16) {
      const tag = buffer.readBigInt64LE(at);
      if (tag === 0n) break; // DT_NULL
      if (tag === 1n) needed.push(string(strtab, Number(buffer.readBigUInt64LE(at + 8)))); // DT_NEEDED
    }
  }
  const versions = {}; // library -> [version names]
  const verneed = sections.find((s) => s.type === 0x6ffffffe); // SHT_GNU_verneed
  if (verneed) {
    const strtab = sections[verneed.link];
    let entry = verneed.offset;
    for (let n = 0; n < verneed.info; n++) {
      const count = buffer.readUInt16LE(entry + 2);
      const file = string(strtab, buffer.readUInt32LE(entry + 4));
      let aux = entry + buffer.readUInt32LE(entry + 8);
      versions[file] = [];
      for (let k = 0; k < count; k++) {
        versions[file].push(string(strtab, buffer.readUInt32LE(aux + 8)));
        const next = buffer.readUInt32LE(aux + 12);
        if (next === 0) break;
        aux += next;
      }
      const next = buffer.readUInt32LE(entry + 12);
      if (next === 0) break;
      entry += next;
    }
  }
  return { type, machine, needed, versions };
}

function compareVersions(a, b) {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    if ((x[i] || 0) !== (y[i] || 0)) return (x[i] || 0) - (y[i] || 0);
  }
  return 0;
}

/** The floor one prebuild needs, and what in it breaks the stated floor (empty when none). */
function floorOf(elf, libc) {
  const all = Object.values(elf.versions).flat();
  const glibc = all.filter((v) => /^GLIBC_\d/.test(v)).map((v) => v.slice('GLIBC_'.length)).sort(compareVersions);
  const highest = glibc.length > 0 ? `GLIBC_${glibc[glibc.length - 1]}` : 'none';
  // GLIBCXX_ first (what names the GCC a build needs), each family by version.
  const family = (v) => ['GLIBCXX', 'CXXABI', 'GCC'].indexOf(v.split('_')[0]);
  const cxx = all.filter((v) => /^(GLIBCXX|CXXABI|GCC)_/.test(v)).sort((a, b) => family(b) - family(a) || compareVersions(a.split('_')[1], b.split('_')[1]));
  const problems = [];
  if (libc === 'glibc') {
    for (const library of elf.needed.filter((n) => !GLIBC_LIBRARIES.test(n))) problems.push(`needs ${library}`);
    if (glibc.length > 0 && compareVersions(glibc[glibc.length - 1], GLIBC_FLOOR) > 0) {
      problems.push(`needs ${highest} (floor GLIBC_${GLIBC_FLOOR}: ${[...new Set(glibc.filter((v) => compareVersions(v, GLIBC_FLOOR) > 0))].map((v) => `GLIBC_${v}`).join(', ')})`);
    }
    if (cxx.length > 0) problems.push(`needs ${cxx[cxx.length - 1]} (no libstdc++ / libgcc_s allowed)`);
    const other = all.filter((v) => !/^(GLIBC|GLIBCXX|CXXABI|GCC)_/.test(v));
    if (other.length > 0) problems.push(`needs symbol versions ${other.join(', ')}`);
  } else {
    for (const library of elf.needed.filter((n) => !MUSL_LIBRARIES.test(n))) problems.push(`needs ${library} (a musl build links musl's libc only)`);
    if (all.length > 0) problems.push(`has versioned symbols (${all.join(', ')}): not a musl build`);
  }
  return { highest, cxx: cxx.length > 0 ? cxx[cxx.length - 1] : 'none', problems };
}

const root = path.join(__dirname, '..');
const problems = [];
const rows = [];
for (const { dir, machine, file: name } of EXPECTED) {
  const file = path.join(root, 'prebuilds', name);
  const shown = path.relative(root, file);
  const libc = name.endsWith('.musl.node') ? 'musl' : 'glibc';
  let buffer;
  try {
    buffer = fs.readFileSync(file);
  } catch {
    problems.push(`${shown} is missing`);
    rows.push([shown, 'missing', '', '', '']);
    continue;
  }
  let elf;
  try {
    elf = readElf(buffer);
  } catch {
    elf = undefined;
  }
  if (!elf || elf.type !== 3 || elf.machine !== machine) {
    problems.push(`${shown} is not a ${dir} shared object`);
    rows.push([shown, 'not a ' + dir + ' shared object', '', '', '']);
    continue;
  }
  const floor = floorOf(elf, libc);
  for (const problem of floor.problems) problems.push(`${shown} ${problem}`);
  rows.push([shown, elf.needed.join(' '), floor.highest, floor.cxx, floor.problems.length === 0 ? 'ok' : 'OVER THE FLOOR']);
}

if (process.argv.includes('--table')) {
  const header = ['prebuild', 'DT_NEEDED', 'highest GLIBC_', 'GLIBCXX_/CXXABI_/GCC_', `floor (glibc <= ${GLIBC_FLOOR}, no libstdc++; musl: libc only)`];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  process.stdout.write(`${[line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n')}\n`);
}

if (problems.length > 0) {
  if (process.env.PMU_PACK_WITHOUT_PREBUILDS === '1') {
    process.stderr.write(`pmu: packing without prebuilt addons that fit (${problems.join('; ')}): installs will build from source\n`);
  } else {
    process.stderr.write(`pmu: not packing: ${problems.join('; ')}. Run npm run prebuilds first (PMU_PACK_WITHOUT_PREBUILDS=1 packs without them).\n`);
    process.exit(1);
  }
}
