/**
 * The pmu command line. One file per command; this file only dispatches and turns failures
 * into one line on stderr and an exit status (1 for a failure, 2 for a bad command line).
 * Habits of git and etcdctl: `pmu --version`, `pmu help CMD` = `pmu CMD --help`, and a mistake
 * said once, prefixed once, with where to read more.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { useAddon } from '../unit/native';
import { PmuError } from '../unit/errors';
import { parse, UsageError } from './args';
import { bench } from './commands/bench';
import { cluster } from './commands/cluster';
import { Command } from './command';
import { helpText } from './help';
import { inspect } from './commands/inspect';
import { read } from './commands/read';
import { region } from './commands/region';
import { serve } from './commands/serve';
import { stat } from './commands/stat';
import { tail } from './commands/tail';
import { user } from './commands/user';
import { write } from './commands/write';

export const COMMANDS: Record<string, Command> = {
  serve,
  region,
  write,
  read,
  inspect,
  user,
  tail,
  stat,
  bench,
  cluster,
};

function overview(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length));
  const lines = Object.entries(COMMANDS).map(([name, command]) => `  ${name.padEnd(width)}  ${command.summary}`);
  return `Usage: pmu COMMAND [options]   (pmu help COMMAND, or pmu COMMAND --help, for more)
       pmu --version

${lines.join('\n')}
`;
}

/** The package's version: dist/cli/main.js is two levels below package.json. */
export function version(): string {
  return (JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
}

export async function main(argv: string[]): Promise<number> {
  // Another build of the addon (sanitizers, the crash recorder): the CLI is the one reader of PMU_* variables.
  if (process.env.PMU_ADDON_PATH) useAddon(process.env.PMU_ADDON_PATH);
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-v' || name === 'version') {
    process.stdout.write(`pmu ${version()}\n`);
    return 0;
  }
  if (name === undefined || name === '--help' || name === '-h' || (name === 'help' && rest.length === 0)) {
    process.stdout.write(overview());
    return name === undefined ? 2 : 0;
  }
  if (name === 'help') return help(rest[0]);
  const command = COMMANDS[name];
  if (!command) return unknownCommand(name);
  // `--help` anywhere before `--` wins over everything else, as in git.
  const options = rest.indexOf('--') === -1 ? rest : rest.slice(0, rest.indexOf('--'));
  if (options.includes('--help') || options.includes('-h')) {
    process.stdout.write(helpText(name, command));
    return 0;
  }
  try {
    command.checkArgv?.(rest);
    return await command.run(parse(rest, command.options), rest);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`pmu ${name}: ${error.message} (pmu help ${name})\n`);
      return 2;
    }
    if (error instanceof PmuError) {
      process.stderr.write(`pmu ${name}: ${error.code}: ${error.message}\n`);
      return 1;
    }
    process.stderr.write(`pmu ${name}: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}

function help(name: string): number {
  const command = COMMANDS[name];
  if (!command) return unknownCommand(name);
  process.stdout.write(helpText(name, command));
  return 0;
}

function unknownCommand(name: string): number {
  process.stderr.write(`pmu: unknown command ${JSON.stringify(name)}\n${overview()}`);
  return 2;
}
