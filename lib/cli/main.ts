/**
 * The pmu command line. One file per command; this file only dispatches and turns failures
 * into one line on stderr and an exit status (1 for a failure, 2 for a bad command line).
 */
import { useAddon } from '../unit/native';
import { PmuError } from '../unit/errors';
import { UsageError } from './args';
import { bench } from './commands/bench';
import { cluster } from './commands/cluster';
import { Command } from './command';
import { inspect } from './commands/inspect';
import { read } from './commands/read';
import { region } from './commands/region';
import { serve } from './commands/serve';
import { stat } from './commands/stat';
import { tail } from './commands/tail';
import { user } from './commands/user';
import { write } from './commands/write';

const COMMANDS: Record<string, Command> = {
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
  return `Usage: pmu COMMAND [options]   (pmu COMMAND --help for more)\n\n${lines.join('\n')}\n`;
}

export async function main(argv: string[]): Promise<number> {
  // Another build of the addon (sanitizers, the crash recorder): the CLI is the one reader of PMU_* variables.
  if (process.env.PMU_ADDON_PATH) useAddon(process.env.PMU_ADDON_PATH);
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(overview());
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`pmu: unknown command ${JSON.stringify(name)}\n${overview()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(command.usage + '\n');
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`pmu ${name}: ${error.message} (see pmu ${name} --help)\n`);
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
