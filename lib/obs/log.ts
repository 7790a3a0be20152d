/**
 * Structured logs: JSON lines through pino. The server and the CLI hand events to an EventLog
 * (one call per event, off the hot path: logins, refusals, limit hits, connections); they never
 * format log lines themselves. `silentLog` is the default so an embedded server says nothing.
 * Every line has pino's `msg` (what log tools show as the message): the sentence a caller gives,
 * else the event name; `event` stays the stable key to filter on.
 */
import pino from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface EventLog {
  /**
   * `event` names what happened (a stable string: 'auth.failed', 'limit.hit', ...); fields say
   * the rest; `msg`, when given, is the sentence for a human (default: the event name).
   */
  warn(event: string, fields: Record<string, unknown>, msg?: string): void;
  info(event: string, fields: Record<string, unknown>, msg?: string): void;
  debug(event: string, fields: Record<string, unknown>, msg?: string): void;
  /** False when `level` would be dropped: lets a caller skip building fields nobody reads. */
  enabled(level: 'warn' | 'info' | 'debug'): boolean;
}

export const silentLog: EventLog = {
  warn() {},
  info() {},
  debug() {},
  enabled: () => false,
};

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/** A pino logger writing JSON lines to `fd` (default stderr, synchronously: a line is out before a crash). */
export function createLog(options: { level?: LogLevel; fd?: number; name?: string } = {}): EventLog {
  const logger = pino({ level: options.level ?? 'info', name: options.name ?? 'pmu', base: { pid: process.pid } }, pino.destination({ dest: options.fd ?? 2, sync: true }));
  return fromPino(logger);
}

/** Wraps an existing pino logger (e.g. an application's own) as an EventLog. */
export function fromPino(logger: pino.Logger): EventLog {
  return {
    warn: (event, fields, msg) => logger.warn({ event, ...fields }, msg ?? event),
    info: (event, fields, msg) => logger.info({ event, ...fields }, msg ?? event),
    debug: (event, fields, msg) => logger.debug({ event, ...fields }, msg ?? event),
    enabled: (level) => logger.isLevelEnabled(level),
  };
}

/**
 * Bounds what hostile clients can make the server write to its log: per event kind (and per
 * limit, for 'limit.hit'), at most `perSecond` lines a second; the rest are counted and the
 * next line that goes out carries `suppressed: N`. A flood of failed logins or refusals thus
 * costs a few lines a second, not a disk.
 */
export function rateLimited(log: EventLog, perSecond = 50): EventLog {
  if (log === silentLog) return log;
  const windows = new Map<string, { second: number; lines: number; suppressed: number }>();
  const pass = (event: string, fields: Record<string, unknown>): Record<string, unknown> | undefined => {
    const kind = typeof fields.limit === 'string' ? `${event}:${fields.limit}` : event;
    const second = Math.floor(Date.now() / 1000);
    let window = windows.get(kind);
    if (!window) windows.set(kind, (window = { second, lines: 0, suppressed: 0 }));
    if (window.second !== second) {
      window.second = second;
      window.lines = 0;
    }
    if (window.lines >= perSecond) {
      window.suppressed++;
      return undefined;
    }
    window.lines++;
    if (window.suppressed === 0) return fields;
    const out = { ...fields, suppressed: window.suppressed };
    window.suppressed = 0;
    return out;
  };
  return {
    warn: (event, fields, msg) => {
      const out = log.enabled('warn') ? pass(event, fields) : undefined;
      if (out) log.warn(event, out, msg);
    },
    info: (event, fields, msg) => {
      const out = log.enabled('info') ? pass(event, fields) : undefined;
      if (out) log.info(event, out, msg);
    },
    debug: (event, fields, msg) => {
      const out = log.enabled('debug') ? pass(event, fields) : undefined;
      if (out) log.debug(event, out, msg);
    },
    enabled: (level) => log.enabled(level),
  };
}
