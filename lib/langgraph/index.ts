/**
 * pmu/langgraph: a LangGraph.js checkpointer on a pmu region. Imported on its own subpath so
 * that users who never use LangGraph need neither @langchain/langgraph-checkpoint nor
 * @langchain/core (optional peer dependencies).
 */
export { PmuSaver } from './saver.js';
export type { PmuSaverOptions } from './options.js';
export type { StandbyOptions } from './standby.js';
export { MAX_ID_BYTES } from './ids.js';
