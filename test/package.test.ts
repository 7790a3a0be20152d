/**
 * The npm package as it is packed and installed: what `npm pack` puts in it (nothing missing,
 * no build leftovers, no native file that does not build from the package), the prepack guard
 * that refuses a package without its prebuilt addons, and the install script's three roads (a
 * prebuild that loads; a source build; no compiler: one line saying what to install). No
 * network; ~5 s. The full pack-and-install with the compiler hidden, and a source build from the
 * tarball, is .ci/pack-install.sh.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { removeTempDirs, tempDir } from './helpers/temp';

const REPO = path.join(__dirname, '..');
afterAll(removeTempDirs);

describe('npm pack --dry-run', () => {
  let files: string[];

  beforeAll(() => {
    const result = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: REPO, encoding: 'utf8', timeout: 60_000 });
    expect(result.status).toBe(0);
    files = (JSON.parse(result.stdout) as Array<{ files: Array<{ path: string }> }>)[0].files.map((f) => f.path);
  });

  test('ships what a user needs: code, types, CLI, install script, sources for a source build, docs, license, examples', () => {
    for (const file of ['package.json', 'README.md', 'LICENSE', 'bin/pmu.js', 'dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js', 'scripts/install.js', 'binding.gyp', 'CMakeLists.txt', 'examples/kv-service.js', 'bench/run.js', 'bench/peers/install.sh']) {
      expect(files).toContain(file);
    }
    // Every source binding.gyp and CMakeLists.txt compile, except what CMake guards with EXISTS.
    const gypSources = [...fs.readFileSync(path.join(REPO, 'binding.gyp'), 'utf8').matchAll(/"(native\/[^"]+\.cpp)"/g)].map((m) => m[1]);
    expect(gypSources.length).toBeGreaterThan(3);
    const cmake = fs.readFileSync(path.join(REPO, 'CMakeLists.txt'), 'utf8');
    const guarded = new Set([...cmake.matchAll(/EXISTS \$\{CMAKE_SOURCE_DIR\}\/([^\s)]+)/g)].map((m) => m[1]));
    const cmakeSources = [...cmake.matchAll(/\b(native\/\S+\.cpp)\b/g)].map((m) => m[1]).filter((s) => !guarded.has(s));
    for (const source of [...gypSources, ...cmakeSources]) expect(files).toContain(source);
    for (const header of fs.readdirSync(path.join(REPO, 'native', 'core')).filter((f) => f.endsWith('.h'))) expect(files).toContain(`native/core/${header}`);
    // Every file the README links to.
    const links = [...fs.readFileSync(path.join(REPO, 'README.md'), 'utf8').matchAll(/\]\(((?!https?:)[^)#]+)\)/g)].map((m) => m[1]);
    expect(links.length).toBeGreaterThan(3);
    for (const link of links) expect(files).toContain(link);
    // Every dist module the compiled index requires.
    for (const file of files.filter((f) => f.startsWith('dist/') && f.endsWith('.js'))) expect(files).toContain(file.replace(/\.js$/, '.d.ts'));
    for (const file of files.filter((f) => f.startsWith('dist/') && f.endsWith('.mjs'))) expect(files).toContain(file.replace(/\.mjs$/, '.d.mts'));
  });

  test('ships every entry point, ES module and CommonJS, with its types (scripts/build-esm.js makes the ES module ones)', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { exports: Record<string, string | Record<string, Record<string, string>>> };
    const targets: string[] = [];
    for (const [subpath, target] of Object.entries(pkg.exports)) {
      if (typeof target === 'string') {
        targets.push(target);
        continue;
      }
      // Each subpath is conditional: an ES module entry and a CommonJS one, each with its own types.
      expect({ subpath, conditions: Object.keys(target) }).toEqual({ subpath, conditions: ['import', 'require'] });
      for (const condition of Object.values(target)) {
        expect(Object.keys(condition)).toEqual(['types', 'default']);
        targets.push(...Object.values(condition));
      }
    }
    expect(targets.length).toBe(4 * 4 + 1);
    for (const target of targets) expect(files).toContain(target.replace(/^\.\//, ''));
    // pmu/langgraph's ES module build is ES modules by its folder's package.json, .js and .d.ts alike.
    expect(files).toContain('dist/langgraph-esm/package.json');
    expect(JSON.parse(fs.readFileSync(path.join(REPO, 'dist', 'langgraph-esm', 'package.json'), 'utf8'))).toEqual({ type: 'module' });
    expect(files.filter((f) => f.startsWith('dist/langgraph-esm/') && f.endsWith('.js')).map((f) => path.posix.basename(f)).sort()).toEqual(
      files.filter((f) => f.startsWith('dist/langgraph/') && f.endsWith('.js')).map((f) => path.posix.basename(f)).sort(),
    );
  });

  test('holds only native files that build from it: the sources of the shipped binding.gyp targets and the headers they include', () => {
    const shipped = new Set(files);
    const native = files.filter((f) => f.startsWith('native/'));
    // gyp's JSON with # comments.
    const gyp = JSON.parse(fs.readFileSync(path.join(REPO, 'binding.gyp'), 'utf8').replace(/^\s*#.*$/gm, '')) as { targets: Array<{ target_name: string; sources: string[] }> };
    expect(gyp.targets.map((t) => t.target_name)).toEqual(['pmu']);
    const targetSources = new Set(gyp.targets.flatMap((t) => t.sources));
    expect(native.filter((f) => f.endsWith('.cpp') && !targetSources.has(f))).toEqual([]);
    // Every quoted #include of a shipped source, followed through the headers, is a shipped file;
    // what only the recording build compiles (#ifdef PMU_CRASH_RECORD, native/crash/) is left out.
    const reached = new Set<string>();
    const unresolved: string[] = [];
    const visit = (file: string): void => {
      if (reached.has(file)) return;
      reached.add(file);
      const text = fs.readFileSync(path.join(REPO, file), 'utf8').replace(/^#ifdef PMU_CRASH_RECORD\n[\s\S]*?^#endif\n/gm, '');
      for (const [, include] of text.matchAll(/^#include "([^"]+)"/gm)) {
        const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), include));
        if (shipped.has(target)) visit(target);
        else unresolved.push(`${file} includes ${include}`);
      }
    };
    for (const source of targetSources) visit(source);
    expect(unresolved).toEqual([]);
    // No header that no shipped source includes.
    expect(native.filter((f) => f.endsWith('.h') && !reached.has(f))).toEqual([]);
    // The crash recorder and the bench's floor addon are their own targets' sources, which the
    // package does not build: a clone's only (the floor addon ships prebuilt, prebuilds/*/floor/).
    expect(files.filter((f) => /^native\/(crash|floor|test)\//.test(f) || /(crash_recorder|crash_binding|floor)\.(cpp|h|gyp)$/.test(f))).toEqual([]);
  });

  test('ships no build leftovers, tests, TypeScript sources or local state', () => {
    const forbidden = [/^build\//, /^build-/, /^lib\//, /^test\//, /^native\/test\//, /^node_modules\//, /^\.ci\//, /\.map$/, /\.tsbuildinfo$/, /\.pmu$/, /^pmu-data\//, /results\//, /^tsconfig/, /^jest\.config/, /\.o$/, /\.tgz$/, /^scripts\/(?!install\.js$)/];
    expect(files.filter((file) => forbidden.some((pattern) => pattern.test(file)))).toEqual([]);
    const prebuilds = files.filter((f) => f.startsWith('prebuilds/'));
    expect(prebuilds.filter((f) => !/^prebuilds\/linux-(x64|arm64)\/(pmu|floor\/pmu_floor)\.(glibc|musl)\.node$/.test(f))).toEqual([]);
  });

  test('carries the prebuilt addons for glibc and musl on both platforms, and the bench\'s floor addon for each, once `npm run prebuilds` has made them (always in CI)', () => {
    const made = fs.existsSync(path.join(REPO, 'prebuilds'));
    if (!made && process.env.CI !== 'true') {
      console.warn('SKIPPED: no prebuilds/ in this checkout: run `npm run prebuilds` (zig from npm ci) to check they are packed');
      return;
    }
    const expected = ['x64', 'arm64'].flatMap((arch) => ['glibc', 'musl'].flatMap((libc) => [`prebuilds/linux-${arch}/pmu.${libc}.node`, `prebuilds/linux-${arch}/floor/pmu_floor.${libc}.node`]));
    expect(files).toEqual(expect.arrayContaining(expected));
  });
});

/** A package directory as npm unpacks it: scripts/, package.json, and the dependencies. */
function installedLayout(): string {
  const dir = path.join(tempDir('pmu-pkg-'), 'pmu');
  fs.mkdirSync(path.join(dir, 'scripts'), { recursive: true });
  for (const file of ['scripts/install.js', 'scripts/check-prebuilds.js', 'package.json']) fs.copyFileSync(path.join(REPO, file), path.join(dir, file));
  fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}

/** A PATH holding node and nothing else: no python3, make or g++. */
function pathWithoutCompiler(): string {
  const bin = tempDir('pmu-bin-');
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  return bin;
}

/** The addon this checkout built, to play the part of a prebuild. */
function hostAddon(): string {
  for (const candidate of [path.join(REPO, 'build', 'Release', 'pmu.node'), path.join(REPO, 'prebuilds', `linux-${process.arch}`, 'pmu.glibc.node')]) {
    if (fs.existsSync(candidate)) return candidate;
  }
  throw new Error('no built addon in this checkout: run npm ci first');
}

function install(dir: string, env: NodeJS.ProcessEnv = {}) {
  const result = spawnSync(process.execPath, [path.join(dir, 'scripts', 'install.js')], { cwd: dir, encoding: 'utf8', env: { ...process.env, npm_config_build_from_source: '', npm_config_node_gyp: '', ...env }, timeout: 60_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('the production addon', () => {
  test('carries no benchmark: measureFloor is the bench\'s floor addon\'s (native/floor)', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    expect(Object.keys(require(hostAddon()))).not.toContain('measureFloor');
  });
});

describe('the install script', () => {
  test('uses a prebuild that fits and loads, and builds nothing', () => {
    const dir = installedLayout();
    fs.mkdirSync(path.join(dir, 'prebuilds', `linux-${process.arch}`, 'floor'), { recursive: true });
    fs.copyFileSync(hostAddon(), path.join(dir, 'prebuilds', `linux-${process.arch}`, 'pmu.glibc.node'));
    // The floor addon beside it (in floor/, as scripts/prebuild.sh puts it) is never taken for pmu's own.
    fs.writeFileSync(path.join(dir, 'prebuilds', `linux-${process.arch}`, 'floor', 'pmu_floor.glibc.node'), 'not an ELF file');
    const result = install(dir, { PATH: pathWithoutCompiler() });
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toBe(`pmu: using the prebuilt addon prebuilds/linux-${process.arch}/pmu.glibc.node\n`);
    expect(fs.existsSync(path.join(dir, 'build'))).toBe(false);
  });

  test('with no prebuild and no compiler: exits 1 with one line naming what to install', () => {
    const dir = installedLayout();
    const result = install(dir, { PATH: pathWithoutCompiler() });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `pmu: no prebuilt addon fits or loads on linux-${process.arch}; building the addon from source needs python3, make and g++: python3, make, g++ missing here. Install them (Debian/Ubuntu: apt-get install -y python3 make g++; Alpine: apk add python3 make g++; Fedora: dnf install python3 make gcc-c++) and run npm rebuild pmu.\n`,
    );
  });

  test('a prebuild that does not load (wrong libc, damaged) counts as none', () => {
    const dir = installedLayout();
    fs.mkdirSync(path.join(dir, 'prebuilds', `linux-${process.arch}`), { recursive: true });
    fs.writeFileSync(path.join(dir, 'prebuilds', `linux-${process.arch}`, 'pmu.glibc.node'), 'not an ELF file');
    const result = install(dir, { PATH: pathWithoutCompiler() });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^pmu: no prebuilt addon fits or loads on linux-\w+; building the addon from source needs python3, make and g\+\+/);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });

  test('a source build that fails ends with the same kind of line, after the compiler output', () => {
    const dir = installedLayout();
    // A compiler that is there but fails, through a node-gyp stand-in that fails like it.
    const bin = pathWithoutCompiler();
    for (const tool of ['python3', 'make', 'g++']) fs.symlinkSync('/bin/false', path.join(bin, tool));
    const fakeGyp = path.join(bin, 'fake-node-gyp.js');
    fs.writeFileSync(fakeGyp, "process.stderr.write('gyp ERR! build error\\n'); process.exit(1);\n");
    const result = install(dir, { PATH: bin, npm_config_node_gyp: fakeGyp });
    expect(result.code).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines[0]).toBe('gyp ERR! build error');
    expect(lines[lines.length - 1]).toMatch(/^pmu: building the addon from source failed on linux-\w+ \(output above\)\. It needs python3, make and a C\+\+17 g\+\+: install them .* and run npm rebuild pmu\.$/);
  });
});

describe('prepack guard', () => {
  test('refuses to pack without the prebuilt addons and their floor addons, says how to make them; an override packs anyway', () => {
    const dir = installedLayout();
    const refused = spawnSync(process.execPath, [path.join(dir, 'scripts', 'check-prebuilds.js')], { encoding: 'utf8' });
    expect(refused.status).toBe(1);
    const all = ['x64', 'arm64'].flatMap((arch) => ['pmu.glibc.node', 'pmu.musl.node', 'floor/pmu_floor.glibc.node', 'floor/pmu_floor.musl.node'].map((name) => `prebuilds/linux-${arch}/${name} is missing`));
    expect(refused.stderr).toBe(`pmu: not packing: ${all.join('; ')}. Run npm run prebuilds first (PMU_PACK_WITHOUT_PREBUILDS=1 packs without them).\n`);
    // An x64 binary where the arm64 one belongs is caught too.
    for (const arch of ['x64', 'arm64']) {
      fs.mkdirSync(path.join(dir, 'prebuilds', `linux-${arch}`), { recursive: true });
      fs.copyFileSync(hostAddon(), path.join(dir, 'prebuilds', `linux-${arch}`, 'pmu.glibc.node'));
    }
    const wrong = spawnSync(process.execPath, [path.join(dir, 'scripts', 'check-prebuilds.js')], { encoding: 'utf8' });
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toContain('prebuilds/linux-arm64/pmu.glibc.node is not a linux-arm64 shared object');
    const forced = spawnSync(process.execPath, [path.join(dir, 'scripts', 'check-prebuilds.js')], { encoding: 'utf8', env: { ...process.env, PMU_PACK_WITHOUT_PREBUILDS: '1' } });
    expect(forced.status).toBe(0);
    expect(forced.stderr).toMatch(/^pmu: packing without prebuilt addons/);
  });

  test('refuses a prebuild over its floor: the machine\'s own g++ build (libstdc++, glibc > 2.28) as glibc, a glibc build under a musl name', () => {
    const sourceBuild = path.join(REPO, 'build', 'Release', 'pmu.node');
    if (!fs.existsSync(sourceBuild)) {
      if (process.env.CI === 'true') throw new Error('no build/Release/pmu.node: npm ci builds it');
      console.warn('SKIPPED: no build/Release/pmu.node (npm ci builds it with g++) to play a build over the floor');
      return;
    }
    const dir = installedLayout();
    fs.mkdirSync(path.join(dir, 'prebuilds', 'linux-x64'), { recursive: true });
    for (const libc of ['glibc', 'musl']) fs.copyFileSync(sourceBuild, path.join(dir, 'prebuilds', 'linux-x64', `pmu.${libc}.node`));
    const result = spawnSync(process.execPath, [path.join(dir, 'scripts', 'check-prebuilds.js'), '--table'], { encoding: 'utf8' });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('prebuilds/linux-x64/pmu.glibc.node needs libstdc++.so.6');
    expect(result.stderr).toMatch(/prebuilds\/linux-x64\/pmu\.glibc\.node needs GLIBCXX_3\.4\.\d+ \(no libstdc\+\+/);
    expect(result.stderr).toMatch(/prebuilds\/linux-x64\/pmu\.glibc\.node needs GLIBC_2\.(29|3\d) \(floor GLIBC_2\.28/);
    expect(result.stderr).toContain('prebuilds/linux-x64/pmu.musl.node needs libc.so.6 (a musl build links musl\'s libc only)');
    expect(result.stdout).toMatch(/^\| prebuilds\/linux-x64\/pmu\.glibc\.node .*\| OVER THE FLOOR +\|$/m);
  });

  test('the prebuilds in this checkout are within their floors (the table CI prints)', () => {
    if (!fs.existsSync(path.join(REPO, 'prebuilds')) && process.env.CI !== 'true') {
      console.warn('SKIPPED: no prebuilds/ in this checkout (npm run prebuilds)');
      return;
    }
    const result = spawnSync(process.execPath, [path.join(REPO, 'scripts', 'check-prebuilds.js'), '--table'], { encoding: 'utf8' });
    expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: '' });
    const rows = result.stdout.trim().split('\n').slice(2);
    expect(rows).toHaveLength(8);
    for (const row of rows) expect(row).toMatch(/\| ok +\|$/);
  });
});
