/**
 * The one-sided data operations: WRITE, READ, FLUSH, CAS, CHECKSUM. Each presents (handle, key, vaddr);
 * the connection's BindingTable says whether it may, then the address is translated into the
 * region and the unit does the work. This is the hot path: no allocation beyond the reply, no
 * promise for a 'mapped' write or a READ.
 */
import { durabilityOfWireCode, wireCodeOf } from '../../unit/durability';
import { Binding } from '../bindings';
import {
  CAS_FIXED_BYTES,
  CHECKSUM_FIXED_BYTES,
  DATA_PREFIX_BYTES,
  FLAG_FENCE,
  DURABILITY_CODE_MASK,
  FLUSH_FIXED_BYTES,
  KEY_BYTES,
  MAX_CHECKSUM_BYTES,
  READ_FIXED_BYTES,
  readSafeU64,
  RIGHTS_READ,
  RIGHTS_READ_WRITE,
  WRITE_FIXED_BYTES,
} from '../../wire/protocol';
import type { Session } from '../session';

const EMPTY = Buffer.alloc(0);
const MAPPED_CODE = wireCodeOf('mapped');
/** The options of every unfenced 'mapped' write: one object, not one per request. */
const MAPPED = Object.freeze({ durability: 'mapped' as const });

export function onWrite(session: Session, id: number, flags: number, body: Buffer): void {
  if (!checkLength(session, 'WRITE', id, body, WRITE_FIXED_BYTES, false)) return;
  const binding = bindingFor(session, id, body, 'WRITE', RIGHTS_READ_WRITE);
  if (!binding) return;
  // A view of the received frame: LocalRegion.write copies it into the mapping before its first await.
  const payload = body.subarray(WRITE_FIXED_BYTES);
  const offset = offsetFor(session, id, binding, body, payload.length, 'WRITE');
  if (offset < 0) return;
  let fence: { offset: number; epoch: bigint } | undefined;
  if (flags & FLAG_FENCE) {
    const fenceAddress = readSafeU64(body, DATA_PREFIX_BYTES);
    const fenceOffset = fenceAddress - binding.base;
    if (fenceAddress < 0 || fenceOffset < 0 || fenceOffset > binding.size - 8) {
      return session.replyError(id, 'EBOUNDS', `WRITE fence address ${fenceAddress} is outside region '${binding.name}' [${binding.base}, ${binding.base + binding.size})`);
    }
    fence = { offset: fenceOffset, epoch: body.readBigUInt64LE(DATA_PREFIX_BYTES + 8) };
  }
  const code = flags & DURABILITY_CODE_MASK;
  if (code !== MAPPED_CODE) {
    const durability = durabilityOfWireCode(code);
    if (!durability) return session.replyError(id, 'EINVAL', `WRITE with durability code ${code}, which names no level`);
    // The unit refuses a level its Region type cannot give (EINVAL naming it), like any caller.
    session.track(id, binding.region.write(offset, payload, { durability, fence }).then(() => {
      if (fence) binding.fencedWriter = true;
      return EMPTY;
    }));
  } else {
    // 'mapped': the copy into the mapping is the whole job, so answer now, with no promise
    // in between. A refusal (EFENCED, EIO) throws and the dispatcher replies with its code.
    binding.region.writeSync(offset, payload, fence ? { durability: 'mapped', fence } : MAPPED);
    if (fence) binding.fencedWriter = true;
    session.reply(id, EMPTY);
  }
}

/**
 * Whether to buffer a WRITE whose body is arriving in pieces, decided from its first
 * DATA_PREFIX_BYTES: the connection must hold the region read-write under that key and the
 * range must fit, else the request is refused now and its body never buffered.
 */
export function admitWrite(session: Session, id: number, bodyLength: number, prefix: Buffer): boolean {
  if (bodyLength < WRITE_FIXED_BYTES) return true; // too short to matter; onWrite refuses it whole
  const binding = bindingFor(session, id, prefix, 'WRITE', RIGHTS_READ_WRITE);
  if (!binding) return false;
  return offsetFor(session, id, binding, prefix, bodyLength - WRITE_FIXED_BYTES, 'WRITE') >= 0;
}

export function onRead(session: Session, id: number, body: Buffer): void {
  if (!checkLength(session, 'READ', id, body, READ_FIXED_BYTES, true)) return;
  const binding = bindingFor(session, id, body, 'READ', RIGHTS_READ);
  if (!binding) return;
  const length = body.readUInt32LE(DATA_PREFIX_BYTES);
  const limit = session.host.limits.maxPayloadBytes;
  if (length > limit) return session.replyError(id, 'EFRAMETOOBIG', `READ of ${length} bytes exceeds the limit of ${limit} (maxPayloadBytes); read in pieces`);
  const offset = offsetFor(session, id, binding, body, length, 'READ');
  if (offset < 0) return;
  session.replyFilled(id, length, (target) => binding.region.readIntoSync(offset, target));
}

export function onFlush(session: Session, id: number, body: Buffer): void {
  if (!checkLength(session, 'FLUSH', id, body, FLUSH_FIXED_BYTES, true)) return;
  const binding = bindingFor(session, id, body, 'FLUSH', RIGHTS_READ);
  if (!binding) return;
  const length = readSafeU64(body, DATA_PREFIX_BYTES);
  const offset = offsetFor(session, id, binding, body, length, 'FLUSH');
  if (offset < 0) return;
  session.track(id, binding.region.flush(offset, length).then(() => EMPTY));
}

/**
 * CRC32C of a range, for comparing replicas without moving their bytes. The same checks as
 * READ (key, read right, bounds); the range is capped so one request holds a pool thread for a
 * few ms at most (the checksum itself runs on the libuv pool, not on this event loop).
 */
export function onChecksum(session: Session, id: number, body: Buffer): void {
  if (!checkLength(session, 'CHECKSUM', id, body, CHECKSUM_FIXED_BYTES, true)) return;
  const binding = bindingFor(session, id, body, 'CHECKSUM', RIGHTS_READ);
  if (!binding) return;
  const length = readSafeU64(body, DATA_PREFIX_BYTES);
  const offset = offsetFor(session, id, binding, body, length, 'CHECKSUM');
  if (offset < 0) return;
  if (length > MAX_CHECKSUM_BYTES) return session.replyError(id, 'EINVAL', `CHECKSUM of ${length} bytes exceeds the ${MAX_CHECKSUM_BYTES}-byte limit of one request; checksum it in pieces`);
  session.track(
    id,
    binding.region.checksum(offset, length).then((crc) => {
      const reply = Buffer.allocUnsafe(4);
      reply.writeUInt32LE(crc);
      return reply;
    }),
  );
}

export function onCompareAndSwap(session: Session, id: number, flags: number, body: Buffer): void {
  if (!checkLength(session, 'CAS', id, body, CAS_FIXED_BYTES, true)) return;
  const binding = bindingFor(session, id, body, 'CAS', RIGHTS_READ_WRITE);
  if (!binding) return;
  const offset = offsetFor(session, id, binding, body, 8, 'CAS');
  if (offset < 0) return;
  const expected = body.readBigUInt64LE(DATA_PREFIX_BYTES);
  const value = body.readBigUInt64LE(DATA_PREFIX_BYTES + 8);
  const durability = durabilityOfWireCode(flags & DURABILITY_CODE_MASK);
  if (!durability) return session.replyError(id, 'EINVAL', `CAS with durability code ${flags & DURABILITY_CODE_MASK}, which names no level`);
  session.track(
    id,
    binding.region.compareAndSwap(offset, expected, value, { durability }).then((previous) => {
      const reply = Buffer.allocUnsafe(8);
      reply.writeBigUInt64LE(previous);
      return reply;
    }),
  );
}

/** The binding the request's (handle, key) names, or undefined after replying with the refusal. */
function bindingFor(session: Session, id: number, body: Buffer, what: string, needed: number): Binding | undefined {
  const found = session.bindings.check(body, what, needed, session.principal.user);
  if ('region' in found) return found;
  session.replyError(id, found.code, found.message);
  return undefined;
}

/** The region offset for the request's address, or -1 after replying EBOUNDS. */
function offsetFor(session: Session, id: number, binding: Binding, body: Buffer, length: number, what: string): number {
  const address = readSafeU64(body, 4 + KEY_BYTES);
  const offset = address - binding.base;
  if (address < 0 || length < 0 || offset < 0 || offset > binding.size || length > binding.size - offset) {
    session.replyError(
      id,
      'EBOUNDS',
      `${what} of ${length < 0 ? 'too many' : length} bytes at address ${address < 0 ? 'beyond 2^53' : address} is outside region '${binding.name}' [${binding.base}, ${binding.base + binding.size})`,
    );
    return -1;
  }
  return offset;
}

function checkLength(session: Session, what: string, id: number, body: Buffer, fixed: number, exact: boolean): boolean {
  if (exact ? body.length === fixed : body.length >= fixed) return true;
  session.replyError(id, 'EPROTO', `${what} body of ${body.length} bytes; expected ${exact ? '' : 'at least '}${fixed}`);
  return false;
}
