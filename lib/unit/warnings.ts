/**
 * What open and create have to say that is not an error: the file is on tmpfs, or a dead
 * creator's temporary file was removed. An application (or `pmu serve`, which sends them to its
 * log) takes them with `onWarning`; by default they go to process.emitWarning, once per code in
 * a process, as Node itself warns: visible on stderr, silenced with --no-warnings, and observable
 * with process.on('warning').
 */
export type UnitWarningCode = 'PMU_VOLATILE_FILE' | 'PMU_SPARSE_FILE' | 'PMU_STALE_TEMP_FILE';

export interface UnitWarning {
  code: UnitWarningCode;
  /** The file it is about. */
  file: string;
  /** One sentence that says what to do. */
  message: string;
}

export type OnWarning = (warning: UnitWarning) => void;

const emitted = new Set<UnitWarningCode>();

/** The default onWarning: process.emitWarning, once per code per process (a loop over units is not a flood). */
export const emitWarningOnce: OnWarning = (warning) => {
  if (emitted.has(warning.code)) return;
  emitted.add(warning.code);
  process.emitWarning(warning.message, { type: 'PmuWarning', code: warning.code });
};
