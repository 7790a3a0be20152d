/** pmu serve: creates the data directory on first use, then serves the unit until SIGINT or SIGTERM. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PmuServer, DEFAULT_HOST, DEFAULT_PORT } from '../../server/server';
import { createLog, isLogLevel, LOG_LEVELS } from '../../obs/log';
import { PersistentMemoryUnit } from '../../unit/unit';
import { OptionGroup, out, parseInteger, parseMetricsAddress, UsageError } from '../args';
import { parseSize } from '../sizes';
import { Command } from '../command';
import { CheckpointLogFigures } from '../../checkpoint/log-figures';
import { isLoopback, MetricsEndpoint, serveMetrics } from '../../obs/metrics-endpoint';
import { PmuMetrics } from '../../obs/metrics';
import type { MirrorCounters, ScrubCounters } from '../../obs/counters';
import { createUnitInterruptibly } from '../create-unit';
import { stopWhenOrphanedUnderNpm } from '../orphan-watch';
import { UnitWarning } from '../../unit/warnings';
import { dataDir, ensureAdmin, makeDataDir, pidFileContent, present, readCredential, writeCredential } from '../data-dir';
import { readPrivateFile } from '../../server/private-files';
import { addUser, UserDirectory } from '../../server/users';
import { isPmuError, PmuError } from '../../unit/errors';
import { fileError, onFile } from '../file-errors';
import { ETCD_LOGIN_OPTIONS, etcdLoginFromArgs, refusePasswordArgument } from '../etcd-flags';
import { SET_CA_OPTION, setTlsFromArgs } from '../set-tls';
import { checkEtcdLogin } from '../../mirror/etcd-login';

/** The set's user (PMU_USER / PMU_SECRET) must be an admin here: a resync may create regions. */
function ensureSetUser(usersFile: string): void {
  const user = process.env.PMU_USER;
  const secret = process.env.PMU_SECRET;
  if (!user || !secret) throw new UsageError("--join needs the set's user: set PMU_USER and PMU_SECRET (the same on every PMU of the set)");
  const existing = UserDirectory.load(usersFile).get(user);
  if (!existing) onFile('write', usersFile, () => addUser(usersFile, user, { admin: true, secret }));
  else if (existing.secret !== secret || !existing.admin) throw new PmuError('EAUTH', `user '${user}' in ${usersFile} has another secret or is not an admin; the set's user must be the same admin on every PMU`);
}

const DEFAULT_SIZE = 256 * 1024 * 1024;

const MIRROR: OptionGroup = { heading: 'Mirrored PMUs (docs/MIRROR.md)' };

export const serve: Command = {
  summary: 'serve a PMU file over TCP (or TLS) and a Unix socket',
  description: `Serves DIR/unit.pmu (default DIR ./pmu-data). On first use creates DIR, the PMU file
(preallocated, --size bytes, default 256MiB), DIR/users.json with an admin user, and the admin
credential DIR/admin.credential.json (mode 0600). Refuses a DIR, users file or credential
that another user owns or may write, or a link (with the chmod/chown to run). Stops cleanly on
SIGINT or SIGTERM (during the create of a new unit too: the unfinished file is removed);
SIGHUP reloads the users file (it is also watched, and \`pmu user\` signals the server itself).`,
  options: {
    data: { type: 'string', value: 'DIR', help: 'data directory (default ./pmu-data)' },
    host: { type: 'string', value: 'H', help: `TCP address to listen on (default ${DEFAULT_HOST})` },
    port: { type: 'string', value: 'N', help: `TCP port (default ${DEFAULT_PORT}; 0 picks a free one)` },
    socket: { type: 'string', value: 'PATH', help: 'Unix socket (default DIR/pmu.sock); never replaces anything but a dead socket' },
    'no-tcp': { type: 'boolean', help: 'listen on the Unix socket only' },
    size: { type: 'string', value: 'BYTES', help: 'size of a new PMU file: 268435456, 256MiB, 1GiB, or 1GB (decimal: 10^9)' },
    users: { type: 'string', value: 'FILE', help: 'users file (default DIR/users.json, or PMU_USERS_FILE)' },
    'tls-cert': { type: 'string', value: 'FILE', help: 'serve TLS on the TCP port with this certificate (PEM) ...' },
    'tls-key': { type: 'string', value: 'FILE', help: '... and this private key (PEM); clients use tls://HOST:PORT' },
    'log-level': { type: 'string', value: 'LEVEL', help: `${LOG_LEVELS.join(', ')} (default info): JSON lines on stderr for failed\nlogins, refusals, limit hits, region changes, warnings (rate-limited per kind)` },
    metrics: { type: 'string', value: 'HOST:PORT', help: 'serve Prometheus metrics at http://HOST:PORT/metrics (e.g. 127.0.0.1:9464);\nread them in a terminal with pmu stat. /metrics has no authentication: a\nnon-loopback HOST needs --metrics-public; regions are labelled by handle\n(#N, as pmu region list shows) unless --metrics-region-names' },
    'lone-flush': { type: 'string', value: 'WHERE', hideInUsage: true, help: "where a lone durable write's msync runs: auto (default: on the event loop while no\nother connection has sent a frame in 5 ms and it is at most 64 KiB, saving the\nlibuv pool's two thread wake-ups) or pool (always off the event loop)" },
    'metrics-public': { type: 'boolean', hideInUsage: true, help: 'allow --metrics on an address other hosts can reach' },
    'metrics-region-names': { type: 'boolean', hideInUsage: true, help: 'label region metrics with region names (anyone who can scrape sees them)' },
    join: {
      type: 'string',
      value: 'URL',
      group: MIRROR,
      help: 'join the PMU set whose directory is in etcd at URL (made by pmu cluster init):\nregister this PMU and resync its copies whenever they are out of sync.\nIf it cannot register yet (etcd down, the set not made), it serves and keeps\ntrying with backoff (100 ms doubling to 10 s): join.failed in the log,\npmu_mirror_joined 0 and pmu_mirror_join_failures_total in the metrics.\nNeeds the set\'s user in PMU_USER / PMU_SECRET (added to the users file as an admin).',
    },
    id: { type: 'string', value: 'ID', group: MIRROR, help: "this PMU's id in the set (required with --join); announced in every handshake,\nso a client sent to another PMU's address (a forged directory entry) refuses it" },
    set: { type: 'string', value: 'NAME', group: MIRROR, help: "the set's name (default 'default', or PMU_SET)" },
    advertise: { type: 'string', value: 'URL', group: MIRROR, help: 'the address others reach this PMU at (default the TCP address it listens on)' },
    scrub: { type: 'string', value: 'RATE', group: MIRROR, help: 'with --join: scrub, every minute, the regions this PMU is the read replica of\n(compare replicas by checksum at RATE per replica, e.g. 64MiB; repair from a\nmajority of 3; metrics pmu_scrub_*). Off by default.' },
    'resync-rate': { type: 'string', value: 'RATE', group: MIRROR, help: 'with --join: copy at most RATE per second when resyncing a copy of this PMU\n(e.g. 32MiB; what a checksum finds equal does not count), so writers keep\ntheir latency during a resync. Default: no limit (the set heals fastest).' },
    'set-ca': { ...SET_CA_OPTION, group: MIRROR },
    ...ETCD_LOGIN_OPTIONS,
  },
  footer: 'With --join and an etcd with authentication or TLS (docs/MIRROR.md, "etcd with authentication and\nTLS"): a refused login (EAUTH) or a denied key (EACCESS) stops pmu serve: no retry would fix it.',
  checkArgv: refusePasswordArgument,
  async run({ values, positionals }) {
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    const loneFlush = (values['lone-flush'] as string | undefined) ?? 'auto';
    if (loneFlush !== 'auto' && loneFlush !== 'pool') throw new UsageError(`--lone-flush must be auto or pool, got ${JSON.stringify(loneFlush)}`);
    const level = (values['log-level'] as string | undefined) ?? 'info';
    if (!isLogLevel(level)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(level)}`);
    const tls = readTls(values['tls-cert'] as string | undefined, values['tls-key'] as string | undefined);
    if (tls && values['no-tcp']) throw new UsageError('--tls-cert/--tls-key secure the TCP listener; they make no sense with --no-tcp');
    if (values.users) process.env.PMU_USERS_FILE = values.users as string;
    const layout = dataDir(values.data as string | undefined);
    const port = values.port === undefined ? DEFAULT_PORT : parseInteger('--port', values.port as string, 0, 65535);
    const size = values.size === undefined ? DEFAULT_SIZE : parseSize('--size', values.size as string);
    const metricsAddress = values.metrics === undefined ? undefined : parseMetricsAddress(values.metrics as string);
    if (metricsAddress && !isLoopback(metricsAddress.host) && !values['metrics-public']) {
      throw new UsageError(
        `--metrics ${metricsAddress.host}:${metricsAddress.port} can be reached from other hosts, and /metrics has no authentication: bind 127.0.0.1 and scrape through a proxy or tunnel that authenticates, or add --metrics-public to accept that anyone who reaches it reads the figures`,
      );
    }
    if ((values['metrics-public'] || values['metrics-region-names']) && !metricsAddress) throw new UsageError('--metrics-public and --metrics-region-names go with --metrics HOST:PORT');
    const join = values.join as string | undefined;
    if (values.scrub !== undefined && !join) throw new UsageError('--scrub needs --join: it scrubs the mirrored regions of a PMU set');
    const scrubRate = values.scrub === undefined ? undefined : parseSize('--scrub', values.scrub as string);
    if (values['resync-rate'] !== undefined && !join) throw new UsageError('--resync-rate needs --join: it paces the resyncs of a PMU set');
    const resyncRate = values['resync-rate'] === undefined ? undefined : parseSize('--resync-rate', values['resync-rate'] as string);
    if (resyncRate === 0) throw new UsageError('--resync-rate 0 would never heal a copy: give a rate such as 32MiB, or leave it out for no limit');
    const scrubCounters: ScrubCounters | undefined = scrubRate === undefined ? undefined : { bytesScrubbed: 0, mismatches: 0, repairs: 0 };
    const mirrorCounters: MirrorCounters | undefined = join ? { joinFailures: 0, joined: 0, resyncFailures: 0 } : undefined;
    if (join && !values.id) throw new UsageError('--join needs --id ID: the name of this PMU in the set');
    if (join && values['no-tcp'] && !values.advertise) throw new UsageError('--join needs a TCP address (drop --no-tcp) or --advertise URL');
    if (!join && Object.keys(ETCD_LOGIN_OPTIONS).some((flag) => values[flag] !== undefined)) throw new UsageError('--etcd-user, --etcd-password-file, --etcd-ca, --etcd-cert and --etcd-key go with --join URL');
    // Read and checked before anything is made: a bad password file or URL stops the start here.
    const etcdLogin = join ? etcdLoginFromArgs(values) : {};
    const setTls = join ? setTlsFromArgs(values) : undefined;
    if (join) checkEtcdLogin(join, { auth: etcdLogin.etcdAuth, tls: etcdLogin.etcdTls });
    const log = createLog({ level });
    // What open and create warn of (tmpfs, a dead creator's temporary file removed) is an event
    // in the log, JSON like the rest of it; with the log silenced, a plain line, never nothing.
    const onWarning = (warning: UnitWarning) => {
      if (log.enabled('warn')) log.warn('unit.warning', { code: warning.code, file: warning.file }, warning.message);
      else process.stderr.write(`pmu: warning: ${warning.message}\n`);
    };
    // What a start creates is removed again if the start fails (busy port, bad --size, a full
    // disk): a failed `pmu serve` leaves no unit file, no credential and no new user behind.
    // A restart writes only what is new (writeIfChanged), so a full disk does not stop a PMU
    // whose files are all there already.
    const madeDir = makeDataDir(layout);
    // Everything that could be misread is checked before anything is made or opened.
    const credentialBefore = readCredential(layout.credentialFile);
    const credentialText = credentialBefore && fs.readFileSync(layout.credentialFile);
    // Read as UserDirectory.load reads it: refused if it is a link or another user's, or others may write it.
    const usersBefore = present(layout.usersFile) ? onFile('read', layout.usersFile, () => Buffer.from(readPrivateFile(layout.usersFile, 'users file'))) : undefined;
    const fresh = !fs.existsSync(layout.unitFile);
    const undoFirstStart = () => {
      // Best effort: on a full disk, restoring may fail as well; what fails stays as it was.
      try {
        if (madeDir) return fs.rmSync(layout.dir, { recursive: true, force: true });
        if (fresh) fs.rmSync(layout.unitFile, { force: true });
        if (!credentialText) fs.rmSync(layout.credentialFile, { force: true });
        else if (!fs.readFileSync(layout.credentialFile).equals(credentialText)) fs.writeFileSync(layout.credentialFile, credentialText, { mode: 0o600 });
        const usersNow = fs.existsSync(layout.usersFile) ? fs.readFileSync(layout.usersFile) : undefined;
        if (!usersBefore) fs.rmSync(layout.usersFile, { force: true });
        else if (!usersNow?.equals(usersBefore)) fs.writeFileSync(layout.usersFile, usersBefore, { mode: 0o600 });
      } catch {
        // The error that stopped the start is the one to report.
      }
    };
    let madeAdmin = false;
    let credential = credentialBefore;
    let unit: PersistentMemoryUnit | undefined;
    let server: PmuServer | undefined;
    let addresses;
    let logFigures: CheckpointLogFigures | undefined;
    let endpoint: MetricsEndpoint | undefined;
    const reload = () => {
      const changed = server!.reloadUsers();
      log.info('users.sighup', { changed });
    };
    try {
      madeAdmin = ensureAdmin(layout);
      if (join) ensureSetUser(layout.usersFile);
      if (fresh) {
        await createUnitInterruptibly(layout.unitFile, size, onWarning, undoFirstStart).catch((error: unknown) => {
          // Another process created it meanwhile: serve theirs (open refuses if it still holds it).
          if (!isPmuError(error, 'EEXIST')) throw unitError(error, 'create', layout.unitFile);
        });
      }
      // The addon says ESYS for an open refused by the file system; asked first, the file
      // system says which errno (EROFS, EACCES), and so what to do.
      onFile('open', layout.unitFile, () => fs.accessSync(layout.unitFile, fs.constants.R_OK | fs.constants.W_OK));
      try {
        unit = PersistentMemoryUnit.open(layout.unitFile, { size, onWarning });
      } catch (error) {
        throw unitError(error, 'open', layout.unitFile);
      }
      server = new PmuServer({
        unit,
        users: layout.usersFile,
        tcp: values['no-tcp'] ? false : { host: (values.host as string | undefined) ?? DEFAULT_HOST, port },
        socket: (values.socket as string | undefined) ?? layout.socketPath,
        tls: tls?.options,
        identity: (values.id as string | undefined) ?? '',
        loneFlush,
        log,
      });
      addresses = await server.listen();
      if (metricsAddress) {
        const figures = (logFigures = new CheckpointLogFigures(unit));
        const metrics = new PmuMetrics({ serverStats: () => server!.stats(), unit, logs: () => figures.logs(), scrub: scrubCounters && (() => scrubCounters), mirror: mirrorCounters && (() => mirrorCounters), regionNames: values['metrics-region-names'] === true });
        endpoint = await serveMetrics(metrics, metricsAddress).catch((error: NodeJS.ErrnoException) => {
          throw new PmuError('ECONNECTION', `metrics listen on ${metricsAddress.host}:${metricsAddress.port} failed: ${error.code ?? ''} ${error.message}`.trim(), { cause: error });
        });
      }
      credential = madeAdmin ? readCredential(layout.credentialFile) : credentialBefore;
      if (credential) writeCredential(layout.credentialFile, { ...credential, tcp: addresses.tcp, unix: addresses.unix, tlsCa: tls?.cert });
    } catch (error) {
      logFigures?.close();
      await endpoint?.close();
      if (server) await server.close();
      else if (unit) await unit.close();
      undoFirstStart();
      throw error;
    }
    // SIGINT/SIGTERM stop the server cleanly from here on, before anything says it listens
    // (and while --join still waits for etcd).
    const stopping = new AbortController();
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      stopping.abort();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    const unwatch = stopWhenOrphanedUnderNpm(() => {
      out('pmu: the npm process that started this server is gone (npx does not pass SIGTERM on): stopping');
      stop();
    });
    stopping.signal.addEventListener('abort', unwatch, { once: true });
    // The handler is in place before the pid file tells `pmu user` whom to signal.
    process.on('SIGHUP', reload);
    const pidWarning = writePidFile(layout.pidFile);

    out(`pmu: ${fresh ? 'created' : 'serving'} ${layout.unitFile} (${unit.info().size} bytes)`);
    if (pidWarning) process.stderr.write(`pmu: warning: ${pidWarning}\n`);
    if (addresses.tcp) out(`pmu: listening on ${addresses.tcp}`);
    if (addresses.unix) out(`pmu: listening on ${addresses.unix}`);
    if (endpoint) out(`pmu: metrics on ${endpoint.url}`);
    if (credential) out(`pmu: ${madeAdmin ? 'created the' : ''} admin credential in ${layout.credentialFile} (user '${credential.user}', mode 0600)`.replace('  ', ' '));
    out(`pmu: users file ${layout.usersFile}; add users with: pmu user add NAME --data ${layout.dir}`);
    out(`pmu: connect with: pmu region list --data ${layout.dir}   (or PMU_URL=${addresses.tcp ?? addresses.unix} PMU_USER=admin PMU_SECRET=... pmu region list)`);
    log.info('server.started', { unit: layout.unitFile, tcp: addresses.tcp, unix: addresses.unix, limits: server.limits });

    let agent: { stop(): Promise<void> } | undefined;
    let scrubber: { stop(): Promise<void> } | undefined;
    let directory: { close(): void } | undefined;
    if (join) {
      // Loaded only here: the etcd client is slow to load and only a set member needs it.
      const { MirrorDirectory } = await import('../../mirror/directory');
      const { PmuPool } = await import('../../mirror/pool');
      const { startReplicaAgent } = await import('../../mirror/agent');
      const { joinSet } = await import('../../mirror/join');
      const set = MirrorDirectory.connect(join, { set: (values.set as string | undefined) ?? (process.env.PMU_SET || undefined), ...etcdLogin });
      directory = set;
      const id = values.id as string;
      const url = (values.advertise as string | undefined) ?? (addresses.tcp as string);
      // Not joined is not a reason to stop serving: keep trying, and say so each time (log,
      // pmu_mirror_join_* metrics, and the agent record pmu cluster status shows).
      let joined: boolean;
      try {
        joined = await joinSet(set, { id, url, capacity: unit.info().size }, {
          counters: mirrorCounters,
          signal: stopping.signal,
          onFailure: ({ error, attempt, retryInMs }) => {
            log.warn('join.failed', { set: set.prefix, etcd: join, code: error.code, error: error.message, attempt, retryInMs });
            if (attempt === 1) out(`pmu: cannot join the PMU set ${set.prefix} in ${join} yet (${error.code}: ${error.message}); serving meanwhile and retrying with backoff up to every 10 s (join.failed in the log)`);
          },
        });
      } catch (error) {
        set.close();
        logFigures?.close();
        await endpoint?.close();
        await server.close();
        process.off('SIGHUP', reload);
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        unwatch();
        fs.rmSync(layout.pidFile, { force: true });
        throw error;
      }
      if (joined) {
        log.info('join.done', { set: set.prefix, etcd: join, id, url, failures: mirrorCounters!.joinFailures });
        const pool = new PmuPool(set, { user: process.env.PMU_USER, secret: process.env.PMU_SECRET, timeoutMs: 5000, tls: setTls });
        agent = startReplicaAgent(set, pool, id, {
          counters: mirrorCounters,
          resyncBytesPerSecond: resyncRate,
          onEvent: (event) => {
            if (event.kind === 'resync-failed') {
              log.warn('resync.failed', { region: event.region, code: event.code, error: event.detail, attempts: event.attempts, retryInMs: event.retryInMs });
              out(`pmu: resync-failed of region '${event.region}': ${event.detail} (attempt ${event.attempts}; next in ${event.retryInMs} ms)`);
            } else out(`pmu: ${event.kind} of region '${event.region}'`);
          },
        });
        out(`pmu: joined the PMU set ${set.prefix} in ${join} as '${id}' at ${url}`);
        if (scrubRate !== undefined) {
          const { startScrubber } = await import('../../mirror/scrub');
          scrubber = startScrubber(set, pool, {
            bytesPerSecond: scrubRate,
            counters: scrubCounters,
            only: (config) => config.inSync[0] === id,
            onReport: (report) => {
              if (report.mismatches.length === 0) return;
              out(`pmu: scrub of region '${report.region}': ${report.mismatches.length} mismatching range(s)${report.repaired.length ? `, repaired ${report.repaired.join(', ')}` : ''}${report.note ? `: ${report.note}` : ''}`);
            },
            onError: (region, error) => log.warn('scrub.failed', { region, error: error instanceof Error ? error.message : String(error) }),
          });
          out(`pmu: scrubbing the regions '${id}' is the read replica of at ${values.scrub as string}/s per replica`);
        }
      }
    }

    if (!stopping.signal.aborted) await new Promise((resolve) => stopping.signal.addEventListener('abort', resolve, { once: true }));
    process.off('SIGHUP', reload);
    out('pmu: shutting down: finishing requests in flight, flushing');
    await scrubber?.stop();
    await agent?.stop();
    directory?.close();
    logFigures?.close();
    await endpoint?.close();
    await server.close();
    fs.rmSync(layout.pidFile, { force: true });
    log.info('server.stopped', {});
    out('pmu: stopped');
    return 0;
  },
};

/**
 * A unit that cannot be created or opened, as a PmuError naming the file: the unit's own codes
 * (ECORRUPT, ELOCKED, ENOSPC, EIO) stay, with the path and what to do in the message.
 */
function unitError(error: unknown, what: 'create' | 'open', file: string): PmuError {
  if (!(error instanceof PmuError)) return fileError(error, what, file);
  const advice: Partial<Record<string, string>> = {
    ENOSPC: 'free space on that file system, or use a smaller --size or another --data DIR',
    EIO: 'the disk reported an error: check its health (dmesg), and restore the unit from its other copies or a backup',
    ECORRUPT: 'it is not a PMU file pmu can serve: inspect it with pmu inspect, restore it, or move it away and start with another --data DIR',
    ELOCKED: 'another process serves it: stop that one, or use another --data DIR',
    EACCESS: 'check the owner and mode of the file and its directory',
    ESYS: 'check the file system holding it (mounted read-write? the disk healthy?), or use another --data DIR',
  };
  const message = error.message.includes(file) ? error.message : `cannot ${what} ${file}: ${error.message}`;
  const todo = advice[error.code];
  // The unit's own messages mostly say what to do already; only a bare one gets the advice.
  const saysWhatToDo = /\b(run|restore|free space|stop|choose|delete|use)\b/i.test(message);
  return new PmuError(error.code, todo && !saysWhatToDo ? `${message}; ${todo}` : message, { cause: error });
}

/**
 * Writes this server's pid for `pmu user` (runningServer in ../data-dir.ts says when it is
 * trusted). Not a reason to refuse to serve: a unit is preallocated so that a full disk does not
 * stop it, and without the file `pmu user` still works (the server watches the users file). Returns a warning if it could not be written.
 */
function writePidFile(file: string): string | undefined {
  try {
    // Its start time next to the pid lets `pmu user` tell this process from a later one with
    // the same pid. Removed first and made with O_EXCL, so a link left there is never followed.
    fs.rmSync(file, { force: true });
    fs.writeFileSync(file, pidFileContent(), { mode: 0o600, flag: 'wx' });
    return undefined;
  } catch (error) {
    fs.rmSync(file, { force: true }); // a stale or half-written pid names no one
    return `${fileError(error, 'write', file, '').message}; pmu user reaches this server only by its watch of the users file`;
  }
}

function readTls(certFile: string | undefined, keyFile: string | undefined): { cert: string; options: { cert: Buffer; key: Buffer } } | undefined {
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (certFile === undefined || keyFile === undefined) throw new UsageError('TLS needs both --tls-cert FILE and --tls-key FILE');
  const read = (what: string, file: string) => {
    try {
      return fs.readFileSync(file);
    } catch (error) {
      throw new PmuError('ENOENT', `cannot read the TLS ${what} ${file}: ${(error as Error).message}`);
    }
  };
  const options = { cert: read('certificate', certFile), key: read('key', keyFile) };
  return { cert: path.resolve(certFile), options };
}
