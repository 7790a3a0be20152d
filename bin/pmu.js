#!/usr/bin/env node
'use strict';
// `pmu inspect FILE | head`: a reader that went away is not a failure of ours; stop quietly
// as other command-line tools do, instead of dying on an unhandled EPIPE.
process.stdout.on('error', (error) => {
  if (error && error.code === 'EPIPE') process.exit(process.exitCode || 0);
  throw error;
});
require('../dist/cli/main.js').main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (error) => {
    process.stderr.write(`pmu: ${error && error.message ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
