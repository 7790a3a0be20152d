/**
 * pmu/wire: the frame codec and constants of docs/PROTOCOL.md, for tools that speak pmu's
 * protocol directly (protocol tests, fuzzers, a client in another runtime). PmuClient and
 * PmuServer (from 'pmu') are the supported way to talk to a PMU; this is the layer beneath.
 */
export * from './protocol';
export { encodeError, decodeError } from './error-frame';
export { channelBinding, proof, proofsMatch, randomNonce, sessionKeys } from './auth';
export type { ProofSide, Transcript } from './auth';
export { FrameSeal, TAG_BYTES } from './seal';
export { FrameReader } from './frame-reader';
export type { FrameSink } from './frame-reader';
export { FrameWriter } from './frame-writer';
export { readIntoShared } from './shared-read';
