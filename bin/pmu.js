#!/usr/bin/env node
'use strict';
require('../dist/cli/main.js').main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (error) => {
    process.stderr.write(`pmu: ${error && error.message ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
