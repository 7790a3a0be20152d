/** The log's lines: pino JSON with `event` (the stable key) and `msg` (pino's message field) on every one. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createLog, rateLimited } from '../lib/obs/log';
import { removeTempDirs, tempDir } from './helpers/temp';

afterAll(removeTempDirs);

test('every line has msg: the sentence given, else the event name; event and fields stay', () => {
  const file = path.join(tempDir(), 'log.jsonl');
  const fd = fs.openSync(file, 'w');
  const log = createLog({ level: 'debug', fd });
  log.info('server.started', { unit: '/u.pmu' });
  log.warn('unit.warning', { code: 'PMU_VOLATILE_FILE' }, '/u.pmu is on tmpfs');
  rateLimited(log).debug('auth.failed', { user: 'x' }, 'a login failed');
  fs.closeSync(fd);
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n').map((line) => JSON.parse(line));
  expect(lines).toEqual([
    expect.objectContaining({ level: 30, event: 'server.started', unit: '/u.pmu', msg: 'server.started' }),
    expect.objectContaining({ level: 40, event: 'unit.warning', code: 'PMU_VOLATILE_FILE', msg: '/u.pmu is on tmpfs' }),
    expect.objectContaining({ level: 20, event: 'auth.failed', user: 'x', msg: 'a login failed' }),
  ]);
});
