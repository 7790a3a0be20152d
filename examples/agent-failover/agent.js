'use strict';
// One agent worker, primary or standby, over a PMU (an embedded unit file, or a PMU server):
//   node examples/agent-failover/agent.js primary|standby  file.pmu | tcp://host:port  thread-id [steps]
// The primary runs the thread, checkpointing every step into a pmu region with PmuSaver.
// The standby waits; when the primary dies it takes the region over and resumes the thread from
// its last checkpoint. Remote (PMU_USER/PMU_SECRET set): the standby follows the log live and the
// server tells it at once when the primary's connection drops. Embedded: the unit's file lock
// admits one process, so the standby waits for the lock and recovers from the log.
const { setTimeout: sleep } = require('node:timers/promises');
const pmu = require('pmu');
const { PmuSaver } = require('pmu/langgraph');
const { buildGraph, runThread } = require('./graph');

const [role, where, threadId = 'thread-1', steps = '60'] = process.argv.slice(2);
const remote = /^(tcp|tls|unix):/.test(where);
const REGION = 'agents';
const REGION_BYTES = 16 << 20;

async function remoteRegion() {
  const client = await pmu.PmuClient.connect(where, { user: process.env.PMU_USER, secret: process.env.PMU_SECRET });
  for (;;) {
    if ((await client.listRegions()).some((r) => r.name === REGION)) return client.openRegion(REGION);
    if (role === 'primary') return client.createRegion(REGION, REGION_BYTES);
    await sleep(20); // the standby waits for the primary to create it
  }
}

async function localRegion() {
  for (let attempt = 0; ; attempt++) {
    try {
      return pmu.PersistentMemoryUnit.open(where, { size: 64 << 20 }).ensureRegion(REGION, REGION_BYTES);
    } catch (error) {
      if (error.code !== 'ELOCKED') throw error; // ELOCKED: the primary is alive
      if (attempt === 0) console.log('standing by: waiting for the unit lock');
      await sleep(2);
    }
  }
}

async function main() {
  const region = remote ? await remoteRegion() : await localRegion();
  let saver;
  if (role === 'standby' && remote) {
    console.log('standing by: following the log');
    saver = await PmuSaver.standby(region, { leaseMs: 1000, onPrimaryLost: (failure) => console.log(`primary lost: ${failure.reason}`) });
  } else {
    saver = await PmuSaver.open(region); // a restarted primary, or the embedded standby once it has the lock
  }
  const graph = buildGraph(saver, { stepMs: Number(process.env.AGENT_STEP_MS ?? 20), onStep: (count) => console.log(`step from ${count}`) });
  const config = { configurable: { thread_id: threadId } };
  const saved = await graph.getState(config);
  console.log(`${role} running ${threadId} from count ${saved.values.count ?? 0}`);
  // For the test: hold the thread until a line arrives on stdin (it starts the standby meanwhile).
  if (process.env.AGENT_WAIT_FOR_GO) await new Promise((resolve) => process.stdin.once('data', resolve));
  const final = await runThread(graph, threadId, Number(steps));
  console.log(`done ${JSON.stringify(final)}`);
  await saver.close();
  process.exit(0);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
