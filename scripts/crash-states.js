#!/usr/bin/env node
'use strict';
/**
 * Crash states after a power loss, enumerated (ALICE / CrashMonkey style).
 *
 *   npm run crash-states -- --states 100000 [--seed 1] [--steps 150] [--images-per-point 4]
 *   npm run crash-states -- --repro SEED:POINT:IMAGESEED:MODE   (one image, kept for a look)
 *   --lie-barriers N: check each image as if N more barriers had completed than did (a flush
 *   that made nothing durable): the harness's own test, it must report lost writes.
 *
 * Runs seeded workloads through the crash-recording addon (native/crash, loaded with
 * pmu.useAddon), then for many crash points materialises crash images (the durable image plus
 * a seeded choice of dirty pages: old, new or torn at 512-byte sectors) and recovers each one
 * through the normal open path (scripts/crash/check.js). Prints states explored and failures,
 * each with what reproduces it; exits 1 if any failed. --json prints one JSON summary line last.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { build } = require('./build-crash-addon');

function parseArgs(argv) {
  const opts = { states: 2000, seed: 1, steps: 150, imagesPerPoint: 4, json: false, repro: undefined, keep: undefined, lieBarriers: 0 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--states') opts.states = Number(value());
    else if (a === '--seed') opts.seed = Number(value());
    else if (a === '--steps') opts.steps = Number(value());
    else if (a === '--images-per-point') opts.imagesPerPoint = Math.max(2, Number(value()));
    else if (a === '--repro') opts.repro = value();
    else if (a === '--keep') opts.keep = value();
    else if (a === '--lie-barriers') opts.lieBarriers = Number(value());
    else if (a === '--json') opts.json = true;
    else throw new Error(`unknown option ${a} (see the comment at the top of scripts/crash-states.js)`);
  }
  for (const key of ['states', 'seed', 'steps', 'lieBarriers']) {
    if (!Number.isInteger(opts[key]) || opts[key] < 0) throw new Error(`--${key} must be a non-negative integer`);
  }
  return opts;
}

function scratchDir() {
  // Images are written and reopened tens of thousands of times: tmpfs when there is one.
  const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  return fs.mkdtempSync(path.join(base, 'pmu-crash-'));
}

const MODE_NAMES = ['random', 'durable-only', 'all-new'];

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const addonPath = build();
  const pmu = require('pmu');
  // The recording build, loaded in place of the packaged addon (its crashRecorder is the extra).
  const recorder = pmu.useAddon(addonPath).crashRecorder;
  if (!recorder) throw new Error(`${addonPath} is not the crash-recording build`);
  const { runWorkload } = require('./crash/workload');
  const { checkImage } = require('./crash/check');

  const dir = scratchDir();
  const keepDir = opts.keep ?? path.join(os.tmpdir(), 'pmu-crash-failures');
  const started = Date.now();
  let states = 0;
  let points = 0;
  let rounds = 0;
  let torn = 0;
  /** Operations the workloads made, summed: shows which paths the crash points covered. */
  const ops = {};
  const byKind = new Map();
  const examples = [];
  const record = (failure, where, imagePath) => {
    byKind.set(failure.kind, (byKind.get(failure.kind) ?? 0) + 1);
    if (examples.filter((e) => e.kind === failure.kind).length < 3) {
      fs.mkdirSync(keepDir, { recursive: true });
      const kept = path.join(keepDir, `${failure.kind}-${where.seed}-${where.point}-${where.imageSeed}-${where.mode}.pmu`);
      fs.copyFileSync(imagePath, kept);
      examples.push({ ...failure, ...where, repro: `npm run crash-states -- --repro ${where.seed}:${where.point}:${where.imageSeed}:${where.mode}`, image: kept });
    }
  };

  try {
    const jobs = opts.repro ? [opts.repro.split(':').map(Number)] : undefined;
    for (let round = 0; jobs ? round < 1 : states < opts.states; round++) {
      const seed = jobs ? jobs[0][0] : opts.seed + round;
      const file = path.join(dir, `unit-${seed}.pmu`);
      recorder.watch(file);
      const model = await runWorkload({ pmu, recorder, file, seed, steps: opts.steps });
      for (const [op, n] of Object.entries(model.ops)) ops[op] = (ops[op] ?? 0) + n;
      rounds++;
      const count = recorder.pointCount();
      let chosen = Array.from({ length: count }, (_, i) => i);
      const remaining = opts.states - states;
      if (!jobs && remaining < count * opts.imagesPerPoint) {
        // A bounded run: points spread over the whole workload, not just its start.
        const want = Math.max(1, Math.ceil(remaining / opts.imagesPerPoint));
        chosen = Array.from({ length: Math.min(want, count) }, (_, i) => Math.floor((i * count) / Math.min(want, count)));
      }
      if (jobs) chosen = [jobs[0][1]];
      const image = path.join(dir, 'image.pmu');
      for (const point of chosen) {
        const info = recorder.point(point);
        points++;
        let plan;
        if (jobs) plan = [{ imageSeed: jobs[0][2], mode: jobs[0][3] }];
        else if (info.dirtyPages === 0) plan = [{ imageSeed: 0, mode: 1 }];
        else {
          plan = [{ imageSeed: 0, mode: 1 }, { imageSeed: 0, mode: 2 }];
          for (let j = 2; j < opts.imagesPerPoint; j++) plan.push({ imageSeed: seed * 1000003 + point * 101 + j, mode: 0 });
        }
        for (const { imageSeed, mode } of plan) {
          if (!jobs && states >= opts.states) break;
          const stats = recorder.materialise(point, imageSeed, mode, image);
          torn += stats.tornPages;
          const failures = await checkImage(pmu, model, image, info.barriers + opts.lieBarriers);
          states++;
          const where = { seed, point, barriers: info.barriers, imageSeed, mode: MODE_NAMES[mode], dirtyPages: stats.dirtyPages, newPages: stats.newPages, tornPages: stats.tornPages };
          for (const f of failures) record(f, { ...where, mode }, image);
          if (jobs) {
            console.log(JSON.stringify({ ...where, ops: model.ops, failures }, null, 2));
            fs.mkdirSync(keepDir, { recursive: true });
            const kept = path.join(keepDir, `repro-${seed}-${point}-${imageSeed}-${mode}.pmu`);
            fs.copyFileSync(image, kept);
            console.log(`image kept at ${kept}`);
          }
        }
        if (!jobs && states >= opts.states) break;
      }
      if (!opts.json && !jobs) process.stderr.write(`round ${round} (seed ${seed}): ${count} crash points, ${states} states so far, ${[...byKind.values()].reduce((a, b) => a + b, 0)} failures\n`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const seconds = (Date.now() - started) / 1000;
  const failures = [...byKind.values()].reduce((a, b) => a + b, 0);
  const summary = { states, crashPoints: points, workloads: rounds, tornPages: torn, failures, byKind: Object.fromEntries(byKind), seconds, ops, examples };
  if (!opts.repro) {
    console.log(`crash states explored: ${states} (${points} crash points over ${rounds} workloads, ${torn} torn pages) in ${seconds.toFixed(1)} s`);
    console.log(`failures: ${failures}${failures ? ` ${JSON.stringify(summary.byKind)}` : ''}`);
    for (const e of examples) console.log(`  ${e.kind}: ${e.detail}\n    seed ${e.seed}, point ${e.point} (barrier ${e.barriers}), image ${e.imageSeed}/${MODE_NAMES[e.mode]}, ${e.dirtyPages} dirty pages (${e.newPages} new, ${e.tornPages} torn)\n    repro: ${e.repro}\n    image: ${e.image}`);
  }
  if (opts.json) console.log(JSON.stringify(summary));
  process.exitCode = failures > 0 ? 1 : 0;
}

main().catch((error) => {
  console.error(error.stack ?? error);
  process.exitCode = 2;
});
