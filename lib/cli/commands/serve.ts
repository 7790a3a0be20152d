/** pmu serve: creates the data directory on first use, then serves the unit until SIGINT or SIGTERM. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PmuServer, DEFAULT_HOST, DEFAULT_PORT } from '../../server/server';
import { createLog, isLogLevel, LOG_LEVELS } from '../../obs/log';
import { PersistentMemoryUnit } from '../../unit/unit';
import { out, parse, parseInteger, parseMetricsAddress, parseSize, UsageError } from '../args';
import { Command } from '../command';
import { CheckpointLogFigures } from '../../checkpoint/log-figures';
import { MetricsEndpoint, serveMetrics } from '../../obs/metrics-endpoint';
import { PmuMetrics } from '../../obs/metrics';
import { placementWarnings } from '../placement';
import { dataDir, ensureAdmin, makeDataDir, readCredential, writeCredential } from '../data-dir';
import { addUser, UserDirectory } from '../../server/users';
import { isPmuError, PmuError } from '../../unit/errors';

/** The set's user (PMU_USER / PMU_SECRET) must be an admin here: a resync may create regions. */
function ensureSetUser(usersFile: string): void {
  const user = process.env.PMU_USER;
  const secret = process.env.PMU_SECRET;
  if (!user || !secret) throw new UsageError("--join needs the set's user: set PMU_USER and PMU_SECRET (the same on every PMU of the set)");
  const existing = UserDirectory.load(usersFile).get(user);
  if (!existing) addUser(usersFile, user, { admin: true, secret });
  else if (existing.secret !== secret || !existing.admin) throw new PmuError('EAUTH', `user '${user}' in ${usersFile} has another secret or is not an admin; the set's user must be the same admin on every PMU`);
}

const DEFAULT_SIZE = 256 * 1024 * 1024;

const mib = (bytes: number): number => Math.round(bytes / (1024 * 1024));

export const serve: Command = {
  summary: 'serve a PMU file over TCP (or TLS) and a Unix socket',
  usage: `Usage: pmu serve [--data DIR] [--host H] [--port N] [--socket PATH] [--size BYTES]
                 [--tls-cert FILE --tls-key FILE] [--log-level LEVEL]

Serves DIR/unit.pmu (default DIR ./pmu-data). On first use creates DIR, the PMU file
(preallocated, --size bytes, default 256MiB), DIR/users.json with an admin user, and the admin
credential DIR/admin.credential.json (mode 0600). Stops cleanly on SIGINT or SIGTERM; SIGHUP
reloads the users file (it is also watched, and \`pmu user\` signals the server itself).

  --data DIR      data directory (default ./pmu-data)
  --host H        TCP address to listen on (default ${DEFAULT_HOST})
  --port N        TCP port (default ${DEFAULT_PORT}; 0 picks a free one)
  --socket PATH   Unix socket (default DIR/pmu.sock); never replaces anything but a dead socket
  --no-tcp        listen on the Unix socket only
  --size BYTES    size of a new PMU file: 268435456, 256MiB, 1GiB
  --users FILE    users file (default DIR/users.json, or PMU_USERS_FILE)
  --tls-cert FILE serve TLS on the TCP port with this certificate (PEM) ...
  --tls-key FILE  ... and this private key (PEM); clients use tls://HOST:PORT
  --log-level L   ${LOG_LEVELS.join(', ')} (default info): JSON lines on stderr for failed
                  logins, refusals, limit hits, region changes (rate-limited per kind)
  --metrics HOST:PORT  serve Prometheus metrics at http://HOST:PORT/metrics (e.g. 127.0.0.1:9464);
                  read them in a terminal with pmu stat

Mirrored PMUs (docs/MIRROR.md):
  --join URL      join the PMU set whose directory is in etcd at URL (made by pmu cluster init):
                  register this PMU and resync its copies whenever they are out of sync.
                  Needs the set's user in PMU_USER / PMU_SECRET (added to the users file as an admin).
  --id ID         this PMU's id in the set (required with --join)
  --set NAME      the set's name (default 'default', or PMU_SET)
  --advertise URL the address others reach this PMU at (default the TCP address it listens on)`,
  async run(argv) {
    const { values, positionals } = parse(argv, {
      data: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      socket: { type: 'string' },
      size: { type: 'string' },
      users: { type: 'string' },
      'no-tcp': { type: 'boolean' },
      metrics: { type: 'string' },
      join: { type: 'string' },
      id: { type: 'string' },
      set: { type: 'string' },
      advertise: { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'log-level': { type: 'string' },
    });
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    const level = (values['log-level'] as string | undefined) ?? 'info';
    if (!isLogLevel(level)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(level)}`);
    const tls = readTls(values['tls-cert'] as string | undefined, values['tls-key'] as string | undefined);
    if (tls && values['no-tcp']) throw new UsageError('--tls-cert/--tls-key secure the TCP listener; they make no sense with --no-tcp');
    if (values.users) process.env.PMU_USERS_FILE = values.users as string;
    const layout = dataDir(values.data as string | undefined);
    const port = values.port === undefined ? DEFAULT_PORT : parseInteger('--port', values.port as string, 0, 65535);
    const size = values.size === undefined ? DEFAULT_SIZE : parseSize('--size', values.size as string);
    const metricsAddress = values.metrics === undefined ? undefined : parseMetricsAddress(values.metrics as string);
    const join = values.join as string | undefined;
    if (join && !values.id) throw new UsageError('--join needs --id ID: the name of this PMU in the set');
    if (join && values['no-tcp'] && !values.advertise) throw new UsageError('--join needs a TCP address (drop --no-tcp) or --advertise URL');
    const log = createLog({ level });
    // What a first start creates is removed again if the start fails (busy port, bad --size):
    // a failed `pmu serve` leaves no unit file and no credential behind.
    const madeDir = makeDataDir(layout);
    // Everything that could be misread is checked before anything is made or opened.
    const credentialBefore = readCredential(layout.credentialFile);
    const usersBefore = fs.existsSync(layout.usersFile) ? fs.readFileSync(layout.usersFile) : undefined;
    const madeAdmin = ensureAdmin(layout);
    if (join) ensureSetUser(layout.usersFile);
    const fresh = !fs.existsSync(layout.unitFile);
    const undoFirstStart = () => {
      if (madeDir) return fs.rmSync(layout.dir, { recursive: true, force: true });
      if (fresh) fs.rmSync(layout.unitFile, { force: true });
      if (madeAdmin) {
        fs.rmSync(layout.credentialFile, { force: true });
        if (usersBefore) fs.writeFileSync(layout.usersFile, usersBefore, { mode: 0o600 });
        else fs.rmSync(layout.usersFile, { force: true });
      }
    };
    let unit: PersistentMemoryUnit | undefined;
    let server: PmuServer | undefined;
    let addresses;
    let logFigures: CheckpointLogFigures | undefined;
    let endpoint: MetricsEndpoint | undefined;
    try {
      if (fresh) {
        // Every block is written with zeros (first writes then cost what rewrites do): at disk
        // speed, so a big unit shows how far it has got, on stderr.
        let shown = -1;
        await PersistentMemoryUnit.create(layout.unitFile, {
          size,
          onProgress: (done, total) => {
            const percent = Math.floor((done * 100) / total);
            // A unit made in one batch (64 MiB or less) was never long enough to show.
            if (percent === shown || (shown === -1 && done === total)) return;
            shown = percent;
            process.stderr.write(`pmu: creating ${layout.unitFile}: ${percent}% (${mib(done)} of ${mib(total)} MiB written with zeros)\n`);
          },
        }).catch((error: unknown) => {
          // Another process created it meanwhile: serve theirs (open refuses if it still holds it).
          if (!isPmuError(error, 'EEXIST')) throw error;
        });
      }
      unit = PersistentMemoryUnit.open(layout.unitFile, { size });
      server = new PmuServer({
        unit,
        users: layout.usersFile,
        tcp: values['no-tcp'] ? false : { host: (values.host as string | undefined) ?? DEFAULT_HOST, port },
        socket: (values.socket as string | undefined) ?? layout.socketPath,
        tls: tls?.options,
        log,
      });
      addresses = await server.listen();
      if (metricsAddress) {
        const figures = (logFigures = new CheckpointLogFigures(unit));
        const metrics = new PmuMetrics({ serverStats: () => server!.stats(), unit, logs: () => figures.logs() });
        endpoint = await serveMetrics(metrics, metricsAddress).catch((error: NodeJS.ErrnoException) => {
          throw new PmuError('ECONNECTION', `metrics listen on ${metricsAddress.host}:${metricsAddress.port} failed: ${error.code ?? ''} ${error.message}`.trim(), { cause: error });
        });
      }
    } catch (error) {
      logFigures?.close();
      if (server) await server.close();
      else if (unit) await unit.close();
      undoFirstStart();
      throw error;
    }
    const credential = madeAdmin ? readCredential(layout.credentialFile) : credentialBefore;
    if (credential) writeCredential(layout.credentialFile, { ...credential, tcp: addresses.tcp, unix: addresses.unix, tlsCa: tls?.cert });
    const reload = () => {
      const changed = server!.reloadUsers();
      log.info('users.sighup', { changed });
    };
    // The handler is in place before the pid file tells `pmu user` whom to signal.
    process.on('SIGHUP', reload);
    fs.writeFileSync(layout.pidFile, `${process.pid}\n`, { mode: 0o600 });

    out(`pmu: ${fresh ? 'created' : 'serving'} ${layout.unitFile} (${unit.info().size} bytes)`);
    for (const warning of placementWarnings(layout.unitFile)) process.stderr.write(`pmu: warning: ${warning}\n`);
    if (addresses.tcp) out(`pmu: listening on ${addresses.tcp}`);
    if (addresses.unix) out(`pmu: listening on ${addresses.unix}`);
    if (endpoint) out(`pmu: metrics on ${endpoint.url}`);
    if (credential) out(`pmu: ${madeAdmin ? 'created the' : ''} admin credential in ${layout.credentialFile} (user '${credential.user}', mode 0600)`.replace('  ', ' '));
    out(`pmu: users file ${layout.usersFile}; add users with: pmu user add NAME --data ${layout.dir}`);
    out(`pmu: connect with: pmu region list --data ${layout.dir}   (or PMU_URL=${addresses.tcp ?? addresses.unix} PMU_USER=admin PMU_SECRET=... pmu region list)`);
    log.info('server.started', { unit: layout.unitFile, tcp: addresses.tcp, unix: addresses.unix, limits: server.limits });

    let agent: { stop(): Promise<void> } | undefined;
    let directory: { close(): void } | undefined;
    if (join) {
      // Loaded only here: the etcd client is slow to load and only a set member needs it.
      const { MirrorDirectory } = await import('../../mirror/directory');
      const { PmuPool } = await import('../../mirror/pool');
      const { startReplicaAgent } = await import('../../mirror/agent');
      const set = MirrorDirectory.connect(join, { set: (values.set as string | undefined) ?? (process.env.PMU_SET || undefined) });
      directory = set;
      const id = values.id as string;
      const url = (values.advertise as string | undefined) ?? (addresses.tcp as string);
      try {
        await set.addPmu({ id, url, capacity: unit.info().size });
      } catch (error) {
        set.close();
        logFigures?.close();
        await endpoint?.close();
        await server.close();
        process.off('SIGHUP', reload);
        fs.rmSync(layout.pidFile, { force: true });
        throw error;
      }
      const pool = new PmuPool(set, { user: process.env.PMU_USER, secret: process.env.PMU_SECRET, timeoutMs: 5000 });
      agent = startReplicaAgent(set, pool, id, {
        onEvent: (event) => out(`pmu: ${event.kind} of region '${event.region}'${event.detail ? `: ${event.detail}` : ''}`),
      });
      out(`pmu: joined the PMU set ${set.prefix} in ${join} as '${id}' at ${url}`);
    }

    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    process.off('SIGHUP', reload);
    out('pmu: shutting down: finishing requests in flight, flushing');
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
