/** The shape of one CLI command; main.ts keeps the table of them, help.ts prints their help. */
import { OptionTable, Parsed } from './args';

export interface Command {
  summary: string;
  /**
   * What follows `pmu NAME` before the options: `REGION`, `[URL]`. Its usage line is then made
   * from `options`. A command with actions (region create | list ...) gives `forms` instead.
   */
  operands?: string;
  /** One usage line per action, options included, for commands whose actions take different ones. */
  forms?: string[];
  /** The text between the usage lines and the option list. */
  description: string;
  /** The parser's table and the option list's (lib/cli/args.ts). */
  options: OptionTable;
  /** Text after the option list. */
  footer?: string;
  /** Looks at the raw command line before it is parsed (to refuse what must never be typed, e.g. a password). */
  checkArgv?(argv: string[]): void;
  /** Resolves with the exit code. Throws UsageError for a bad command line, PmuError for a failure. */
  run(parsed: Parsed, argv: string[]): Promise<number>;
}
