'use strict';
// Starts a helper process for the bench (a peer server, an echo server) and waits, with a
// deadline, for the line that says it is ready. stop() kills it and waits for the exit.
const { spawn, execFileSync } = require('node:child_process');
const os = require('node:os');

let tasksetWorks;
/** True where `taskset` can pin processes (util-linux) and there are at least two CPUs. */
function canPin() {
  if (tasksetWorks === undefined) {
    try {
      execFileSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' });
      tasksetWorks = os.cpus().length >= 2;
    } catch {
      tasksetWorks = false;
    }
  }
  return tasksetWorks;
}

/** The CPU every server the bench talks to runs on; the bench itself runs on CPU 0. */
const SERVER_CPU = 1;

function startChild(command, args, readyPattern, { timeoutMs = 15000, env, cpu = SERVER_CPU } = {}) {
  return new Promise((resolve, reject) => {
    const [file, argv] = cpu !== undefined && canPin() ? ['taskset', ['-c', String(cpu), command, ...args]] : [command, args];
    const child = spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let output = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} did not become ready within ${timeoutMs} ms: ${output.slice(-400)}`));
    }, timeoutMs);
    const onData = (chunk) => {
      output += chunk.toString();
      const match = output.match(readyPattern);
      if (match) {
        clearTimeout(timer);
        child.stdout.off('data', onData);
        child.stderr.off('data', onData);
        resolve({ child, match, stop: () => stopChild(child) });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${command} exited (${code ?? signal}) before it was ready: ${output.slice(-400)}`));
    });
  });
}

function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

module.exports = { startChild, canPin, SERVER_CPU };
