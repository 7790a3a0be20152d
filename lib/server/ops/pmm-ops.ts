/**
 * The persistent memory manager's requests: OPEN and CLOSE (any user, within their rights),
 * CREATE, DELETE and SET_GRANTS (admins), LIST (what the user may see). A change to regions or
 * grants is followed at once by ConnectionHost.accessChanged(), so every live connection drops
 * what it may no longer do before the reply goes out.
 */
import { Grant, RegionInfo, toRegionInfo } from '../../unit/unit';
import { NativeEntry } from '../../unit/native';
import { PmuError } from '../../unit/errors';
import { isWellFormed } from '../../unit/validate';
import { rightsFor } from '../access';
import { takeLeaveReason } from '../bindings';
import { EVENT_WRITER_CLOSED, KEY_BYTES, OPEN_REPLY_BYTES, RIGHTS_NONE, RIGHTS_READ, RIGHTS_READ_WRITE, rightsName, writeU64 } from '../../wire/protocol';
import type { Session } from '../session';

const EMPTY = Buffer.alloc(0);

export function onOpen(session: Session, id: number, body: Buffer): void {
  if (body.length < 2) return session.replyError(id, 'EPROTO', 'OPEN body must hold the wanted rights and a region name');
  const wanted = body[0];
  if (wanted !== RIGHTS_NONE && wanted !== RIGHTS_READ && wanted !== RIGHTS_READ_WRITE) return session.replyError(id, 'EPROTO', `OPEN with rights ${wanted}; expected 0, 1 or 3`);
  const name = utf8(body.subarray(1));
  const user = session.principal.user;
  const entry = name === undefined ? undefined : findEntry(session, name);
  const allowed = entry ? rightsFor(session.principal, entry) : RIGHTS_NONE;
  // Missing and forbidden get the same answer: a user learns nothing about regions it may not open.
  if (!entry || allowed === RIGHTS_NONE) {
    return session.replyError(id, 'ENOENT', `no region named ${shown(name)} that user '${user}' may open: it does not exist or '${user}' has no grant on it (an admin can list and grant regions)`);
  }
  if (wanted === RIGHTS_READ_WRITE && allowed !== RIGHTS_READ_WRITE) return session.replyError(id, 'EACCESS', `user '${user}' may only read region '${entry.name}'`);
  const rights = wanted === RIGHTS_NONE ? allowed : wanted;
  const { binding, previous } = session.bindings.bind(session.host.unit, entry, rights);
  // Downgrading an open from rw to r is a writer leaving: watchers hear of it.
  if (previous && previous.rights === RIGHTS_READ_WRITE && rights !== RIGHTS_READ_WRITE) session.host.subscriptions.writerGone(session, user, entry.handle, takeLeaveReason(previous, EVENT_WRITER_CLOSED));
  const reply = Buffer.alloc(OPEN_REPLY_BYTES);
  reply.writeUInt32LE(binding.handle, 0);
  reply[4] = rights;
  writeU64(reply, 8, binding.base);
  writeU64(reply, 16, binding.size);
  binding.key.copy(reply, 24);
  session.reply(id, reply);
}

export function onCloseRegion(session: Session, id: number, body: Buffer): void {
  if (body.length !== 4 + KEY_BYTES) return session.replyError(id, 'EPROTO', `CLOSE body of ${body.length} bytes; expected ${4 + KEY_BYTES}`);
  const found = session.bindings.check(body, 'CLOSE', RIGHTS_READ, session.principal.user);
  if (!('region' in found)) return session.replyError(id, found.code, found.message);
  // Its subscriptions stay: they end with UNWATCH or the connection (docs/PROTOCOL.md).
  session.bindings.delete(found.handle);
  if (found.rights === RIGHTS_READ_WRITE) session.host.subscriptions.writerGone(session, session.principal.user, found.handle, takeLeaveReason(found, EVENT_WRITER_CLOSED));
  session.reply(id, EMPTY);
}

export function onCreate(session: Session, id: number, body: Buffer): void {
  if (!requireAdmin(session, id, 'CREATE')) return;
  const request = parseJson(session, id, body, 'CREATE') as { name?: unknown; size?: unknown; owner?: unknown; grants?: unknown } | undefined;
  if (!request) return;
  const unit = session.host.unit;
  const owner = request.owner === undefined ? session.principal.user : request.owner;
  checkWellFormed('region name', request.name);
  checkWellFormed('owner', owner);
  if (Array.isArray(request.grants)) for (const grant of request.grants) checkWellFormed('grant user', (grant as { user?: unknown } | null)?.user);
  // The zero-fill of space a deleted region used runs on the libuv pool (seconds per GiB):
  // every other connection is served meanwhile, and the region appears only once it is done.
  const created = unit.createRegionAsync(request.name as string, request.size as number, { owner: owner as string }).then(() => {
    if (request.grants !== undefined) {
      try {
        unit.setGrants(request.name as string, request.grants as Grant[]);
      } catch (error) {
        // Never leave a half-made region behind: it would carry the wrong protection.
        unit.deleteRegion(request.name as string);
        throw error;
      }
    }
    session.host.log.info('region.created', { region: request.name, size: request.size, by: session.principal.user });
    return Buffer.from(JSON.stringify(describe(session, toRegionInfo(unit.entry(request.name as string)))), 'utf8');
  });
  session.track(id, created);
}

export function onDelete(session: Session, id: number, body: Buffer): void {
  if (!requireAdmin(session, id, 'DELETE')) return;
  const name = utf8(body);
  checkWellFormed('region name', name);
  session.host.unit.deleteRegion(name!);
  session.host.log.info('region.deleted', { region: name, by: session.principal.user });
  session.host.accessChanged();
  session.reply(id, EMPTY);
}

export function onList(session: Session, id: number): void {
  const visible = session.host.unit.listRegions().filter((info) => rightsFor(session.principal, grantsOf(info)) !== RIGHTS_NONE);
  replyJson(
    session,
    id,
    visible.map((info) => describe(session, info)),
  );
}

export function onSetGrants(session: Session, id: number, body: Buffer): void {
  if (!requireAdmin(session, id, 'SET_GRANTS')) return;
  const request = parseJson(session, id, body, 'SET_GRANTS') as { name?: unknown; grants?: unknown } | undefined;
  if (!request) return;
  checkWellFormed('region name', request.name);
  if (Array.isArray(request.grants)) for (const grant of request.grants) checkWellFormed('grant user', (grant as { user?: unknown } | null)?.user);
  session.host.unit.setGrants(request.name as string, request.grants as Grant[]);
  session.host.log.info('region.grants', { region: request.name, grants: request.grants, by: session.principal.user });
  session.host.accessChanged();
  replyJson(session, id, describe(session, toRegionInfo(session.host.unit.entry(request.name as string))));
}

// ---- helpers ------------------------------------------------------------------------------

function findEntry(session: Session, name: string): NativeEntry | undefined {
  try {
    return session.host.unit.entry(name);
  } catch (error) {
    if (error instanceof PmuError && (error.code === 'ENOENT' || error.code === 'EINVAL')) return undefined;
    throw error;
  }
}

/** The bytes as a string if they are well-formed UTF-8 (else undefined: no U+FFFD stand-ins). */
function utf8(bytes: Buffer): string | undefined {
  const text = bytes.toString('utf8');
  return Buffer.byteLength(text) === bytes.length && !text.includes('\uFFFD') ? text : undefined;
}

/**
 * A name must be a string without lone surrogates: UTF-8 cannot hold one, and the unit would
 * store U+FFFD instead, making a region nobody can name.
 */
function checkWellFormed(what: string, value: unknown): void {
  if (value === undefined || typeof value !== 'string') return; // the unit's own checks refuse these with EINVAL
  if (!isWellFormed(value)) throw new PmuError('EINVAL', `${what} ${shown(value)} holds a lone UTF-16 surrogate; names must be valid Unicode`);
}

/** A name as it may appear in a reply: quoted, and at most 64 characters of it. */
export function shown(name: string | undefined): string {
  if (name === undefined) return '(not valid UTF-8)';
  return `'${name.length > 64 ? name.slice(0, 64) + '…' : name}'`;
}

function requireAdmin(session: Session, id: number, what: string): boolean {
  if (session.principal.admin) return true;
  session.replyError(id, 'EACCESS', `${what} needs an admin user; '${session.principal.user}' is not one`);
  return false;
}

function parseJson(session: Session, id: number, body: Buffer, what: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(body.toString('utf8'));
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) return value;
  } catch {
    // answered below
  }
  session.replyError(id, 'EPROTO', `${what} body must be a JSON object`);
  return undefined;
}

function grantsOf(info: RegionInfo): Pick<NativeEntry, 'owner' | 'grants'> {
  return { owner: info.owner, grants: info.grants.map((g) => ({ user: g.user, rights: g.rights === 'rw' ? RIGHTS_READ_WRITE : RIGHTS_READ })) };
}

function describe(session: Session, info: RegionInfo): RegionInfo & { rights: string } {
  return { ...info, rights: rightsName(rightsFor(session.principal, grantsOf(info))) };
}

function replyJson(session: Session, id: number, value: unknown): void {
  session.reply(id, Buffer.from(JSON.stringify(value), 'utf8'));
}
