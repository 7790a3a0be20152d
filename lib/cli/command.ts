/** The shape of one CLI command; main.ts keeps the table of them. */
export interface Command {
  summary: string;
  /** Full text for `pmu COMMAND --help`. */
  usage: string;
  /** Resolves with the exit code. Throws UsageError for a bad command line, PmuError for a failure. */
  run(argv: string[]): Promise<number>;
}
