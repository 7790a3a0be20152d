export { CheckpointWriter, CheckpointWriterOptions } from './writer';
export { CheckpointReader, LogBatch, FollowOptions, Takeover, TakeoverOptions, ReaderOpenOptions } from './reader';
export { LogRecord, LogRecordType, LogPoint, ScanStop, ScanLimits } from './log-scan';
export { Checkpoint } from './slots';
export { WhenFull } from './ring-appender';
export { PrimaryFailure, WatchPrimaryOptions } from './primary-watch';
export { replayFrom, Replay } from './replay';
export { CheckpointMode, EPOCH_OFFSET, HEARTBEAT_OFFSET, CURSOR_POSITION_OFFSET, CURSOR_SEQUENCE_OFFSET, HEADER_BYTES } from './layout';
export { RECORD_HEADER_BYTES, recordBytes } from './record';
