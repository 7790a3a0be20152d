/**
 * `npx pmu serve` runs pmu under npm, through a shell: npm exec -> sh -c pmu -> node. A SIGTERM
 * to npm (a supervisor stopping it, measured with npm 11) kills that shell without passing the
 * signal on, and pmu is left running, reparented, holding its port and its lock. So when npm
 * started it (npm sets npm_command) pmu watches its parent, and stops as on SIGTERM once that
 * parent is gone. Not otherwise: a server started with nohup or setsid is meant to outlive its shell.
 */
export function stopWhenOrphanedUnderNpm(stop: () => void, everyMs = 250): () => void {
  if (!process.env.npm_command) return () => {};
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    stop();
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
