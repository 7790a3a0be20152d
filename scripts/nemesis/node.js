'use strict';
// A service node of the nemesis: backup until the primary looks gone, then takes over and
// appends. Every line it prints is one history event, with this process's wall clock:
//   <ms> TRY <value>            about to append <value>
//   <ms> ACK <value> <seq>      the append was acknowledged
//   <ms> FAIL <value> <code>    the append failed (then the node exits)
//   <ms> READ <value> <seq> <pmu> <configEpoch>   a record the backup read (or recovered at takeover)
//   <ms> FENCE <epoch>          takeover done: every write issued after this by an older primary must be refused
//   <ms> PRIMARY <epoch>        this node is the primary now
// A second region (STATE_REGION) holds an overwrite log: every STATE_EVERY-th append the primary
// also checkpoints its last value there, and the backup reads the newest checkpoint:
//   <ms> CTRY <value>           about to checkpoint <value>
//   <ms> CACK <value> <seq>     the checkpoint was acknowledged
//   <ms> LTRY                   about to read the newest checkpoint
//   <ms> LATEST <value> <seq>   what it read ('-' '0' when none yet)
// Environment: ETCD, SET, REGION, NAME, PMU_USER, PMU_SECRET, LEASE_MS, APPEND_INTERVAL_MS (pause between appends).
const { CheckpointReader, PmuError, openPrimary } = require('pmu');
const { MirrorDirectory, MirroredRegion, PmuPool } = require('pmu/mirror');

const say = (line) => process.stdout.write(`${Date.now()} ${line}\n`);

const pace = Number(process.env.APPEND_INTERVAL_MS || 0);

const stateEvery = Number(process.env.STATE_EVERY || 5);

async function primary(region, writer, state) {
  say(`PRIMARY ${writer.epoch}`);
  for (let i = 1; ; i++) {
    const value = `${process.env.NAME}-${writer.epoch}-${i}`;
    say(`TRY ${value}`);
    try {
      const sequence = await writer.append(Buffer.from(value));
      say(`ACK ${value} ${sequence}`);
      if (i % stateEvery === 0) {
        say(`CTRY ${value}`);
        say(`CACK ${value} ${await state.checkpoint(Buffer.from(value))}`);
      }
      // Pacing (the short run in npm test shares the machine with other suites).
      if (pace > 0) await new Promise((resolve) => setTimeout(resolve, pace));
    } catch (error) {
      say(`FAIL ${value} ${error.code || 'ERR'}`);
      process.stderr.write(`${process.env.NAME}: append failed: ${error.code} ${error.message}\n`);
      process.exit(error.code === 'EFENCED' ? 3 : error.code === 'EROLLBACK' ? 5 : 4);
    }
  }
}

function witness(region) {
  const w = region.stats.lastRead;
  return w ? `${w.pmu} ${w.epoch}` : '- -';
}

(async () => {
  const env = process.env;
  const directory = MirrorDirectory.connect(env.ETCD, { set: env.SET, timeoutMs: 1000 });
  const pool = new PmuPool(directory, { user: env.PMU_USER, secret: env.PMU_SECRET, timeoutMs: Number(env.PMU_TIMEOUT_MS || 500) });
  const region = await MirroredRegion.open(directory, pool, env.REGION);
  const stateRegion = await MirroredRegion.open(directory, pool, env.STATE_REGION);
  // The overwrite log: formatted by the first primary, taken over (fenced) by each new one.
  const takeState = async () => (await openPrimary(stateRegion, { mode: 'overwrite', heartbeatMs: 0 })).writer;
  let stateReader;
  const readState = async () => {
    try {
      stateReader ??= await CheckpointReader.open(stateRegion);
    } catch (error) {
      if (error instanceof PmuError && error.code === 'ENOENT') return;
      throw error;
    }
    say('LTRY');
    const latest = await stateReader.latest();
    say(`LATEST ${latest ? `${latest.state.toString()} ${latest.sequence}` : '- 0'}`);
  };
  let reader;
  try {
    reader = await CheckpointReader.open(region);
  } catch (error) {
    if (!(error instanceof PmuError) || error.code !== 'ENOENT') throw error;
    const writer = (await openPrimary(region, { mode: 'append', whenFull: 'wait', fullWaitMs: 60000, heartbeatMs: 50 })).writer;
    return primary(region, writer, await takeState());
  }
  say(`BACKUP ${reader.epoch}`);
  const controller = new AbortController();
  const watching = reader.watchPrimary({ leaseMs: Number(env.LEASE_MS || 1500), signal: controller.signal });
  let gone = false;
  watching.then(() => (gone = true), () => (gone = true));
  for (let round = 0; !gone; round++) {
    if (round % 10 === 0) await readState();
    const { records } = await reader.readBatch();
    for (const record of records) say(`READ ${record.payload.toString()} ${record.sequence} ${witness(region)}`);
    if (records.length > 0) await reader.clear(records[records.length - 1].sequence);
    else await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const failure = await watching;
  say(`TAKEOVER ${failure.reason}`);
  const taken = await openPrimary(reader, { whenFull: 'wait', fullWaitMs: 60000, heartbeatMs: 50 });
  for (const record of taken.records) say(`READ ${record.payload.toString()} ${record.sequence} ${witness(region)}`);
  if (taken.records.length > 0) await reader.clear(taken.records[taken.records.length - 1].sequence);
  say(`FENCE ${taken.epoch}`);
  return primary(region, taken.writer, await takeState());
})().catch((error) => {
  say(`ERROR ${error.code || 'ERR'}`);
  process.stderr.write(`${process.env.NAME}: ${error.code || ''} ${error.stack}\n`);
  process.exit(error.code === 'ETAKEN' || error.code === 'EFENCED' ? 3 : error.code === 'EROLLBACK' ? 5 : 1);
});
