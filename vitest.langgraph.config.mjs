// Vitest runs only the LangGraph validation specs (test/langgraph/*.spec.mjs); jest runs
// test/**/*.test.ts and ignores these. `npm test` runs jest, then this.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    globals: true,
    include: ['test/langgraph/**/*.spec.mjs'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // pmu's dist/ is CommonJS with a native addon: load it with Node, not through Vite's transform.
    server: { deps: { external: [/\/dist\//] } },
  },
});
