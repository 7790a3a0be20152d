'use strict';
// A small LangGraph agent with deterministic nodes (no model calls): `work` runs one step of a
// task (a stand-in for a tool call that takes a while) until the task is done. The state is a
// counter and the log of steps done; every step is a checkpoint.
const { Annotation, END, START, StateGraph } = require('@langchain/langgraph');

const State = Annotation.Root({
  count: Annotation({ reducer: (_, next) => next, default: () => 0 }),
  steps: Annotation({ reducer: (done, more) => done.concat(more), default: () => [] }),
  target: Annotation({ reducer: (_, next) => next, default: () => 0 }),
});

/** `onStep(count)` is told the checkpointed count each step starts from. */
function buildGraph(checkpointer, { stepMs = 20, onStep = () => {} } = {}) {
  return new StateGraph(State)
    .addNode('work', async (state) => {
      onStep(state.count);
      await new Promise((resolve) => setTimeout(resolve, stepMs)); // the tool call
      return { count: state.count + 1, steps: [state.count + 1] };
    })
    .addEdge(START, 'work')
    .addConditionalEdges('work', (state) => (state.count < state.target ? 'work' : END))
    .compile({ checkpointer });
}

/**
 * Runs the thread to its end: starts it if it has no checkpoint yet, otherwise resumes from
 * the last one. `durability: 'sync'` makes each step wait for its checkpoint to be saved, so a
 * step that starts has its predecessor's checkpoint acknowledged.
 */
async function runThread(graph, threadId, target) {
  const config = { configurable: { thread_id: threadId }, recursionLimit: 100_000, durability: 'sync' };
  const saved = await graph.getState(config);
  const input = saved.createdAt ? null : { target };
  return graph.invoke(input, config);
}

module.exports = { buildGraph, runThread };
