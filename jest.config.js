'use strict';
/** Tests run against the TypeScript sources through ts-jest; the addon comes from build/Release. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // test/langgraph/*.spec.mjs is the LangGraph validation suite: Vitest runs it (vitest.langgraph.config.mjs).
  testPathIgnorePatterns: ['/node_modules/', '/test/langgraph/'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  // lib/langgraph imports with .js extensions (it is also compiled as ES modules): './saver.js' is saver.ts here.
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  // dist/ rebuilt (incrementally) first: child processes run the compiled package.
  globalSetup: '<rootDir>/test/helpers/global-setup.js',
  testTimeout: 60000,
  maxWorkers: 2,
};
