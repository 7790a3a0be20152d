'use strict';
// The benchmark's suites, in run order: bench/run.js runs them and `pmu bench --help` lists
// them from here, so the two never disagree. Each is bench/suites/NAME.js.
module.exports = { SUITES: ['floors', 'embedded', 'remote', 'durable', 'checkpoint', 'peers', 'clients', 'primaries', 'regions', 'unit-size', 'backup-lag', 'record-size'] };
