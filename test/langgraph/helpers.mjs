// Shared by the validation runs: the suite calls createCheckpointer() before each group of
// tests and expects a store with nothing from earlier groups in it, so every saver gets a
// fresh region, deleted again by destroyCheckpointer().
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { deltaChannelHistoryTests, validate } from '@langchain/langgraph-checkpoint-validation';

export const REGION_BYTES = 4 << 20;

export function tempDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'pmu-langgraph-'));
}

/**
 * Runs the official suite (718 tests) and the opt-in getDeltaChannelHistory tests (8) for a
 * saver made by `initializer`. The name must not be 'MemorySaver' (the suite skips tests for it).
 */
export function validateSaver(initializer) {
  validate(initializer);
  describe(initializer.checkpointerName, () => deltaChannelHistoryTests(initializer));
}
