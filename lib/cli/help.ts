/**
 * A command's help, printed from its option table (lib/cli/args.ts), the same one the parser
 * takes: its usage line lists each option with its value's name, and its option list every
 * option, grouped under headings, so neither can leave an option out or name one that is gone.
 */
import { HELP_OPTION, OptionGroup, OptionSpec } from './args';
import { Command } from './command';

const WIDTH = 100;

export function usageLines(name: string, command: Command): string[] {
  if (command.forms) return command.forms.map((form, i) => `${i === 0 ? 'Usage:' : '      '} pmu ${name} ${form}`);
  const head = `Usage: pmu ${name}${command.operands ? ` ${command.operands}` : ''}`;
  const words: string[] = [];
  const collapsed = new Set<string>();
  for (const [option, spec] of Object.entries(command.options)) {
    if (spec.group?.usage) {
      if (!collapsed.has(spec.group.usage)) words.push(`[${spec.group.usage}]`);
      collapsed.add(spec.group.usage);
    } else if (!spec.hideInUsage) words.push(`[${flag(option, spec)}${spec.multiple ? ' ...' : ''}]`);
  }
  return wrap(head, words);
}

/** `--size BYTES`, `-q, --quick`. */
function flag(option: string, spec: OptionSpec): string {
  return `--${option}${spec.type === 'string' ? ` ${spec.value ?? 'VALUE'}` : ''}`;
}

function wrap(head: string, words: string[]): string[] {
  const indent = ' '.repeat(head.length + 1);
  const lines = [head];
  for (const word of words) {
    const last = lines[lines.length - 1];
    if (last.length + 1 + word.length > WIDTH) lines.push(indent + word);
    else lines[lines.length - 1] = `${last} ${word}`;
  }
  return lines;
}

export function optionLines(command: Command): string[] {
  const groups = new Map<OptionGroup | undefined, Array<[string, OptionSpec]>>([[undefined, []]]);
  for (const entry of Object.entries(command.options)) {
    const group = entry[1].group;
    if (!groups.has(group)) groups.set(group, []);
    groups.get(group)!.push(entry);
  }
  groups.get(undefined)!.push(['help', HELP_OPTION]);
  const label = ([option, spec]: [string, OptionSpec]) => `${spec.short ? `-${spec.short}, ` : ''}${flag(option, spec)}`;
  const all = [...groups.values()].flat();
  const column = Math.min(24, Math.max(...all.map((entry) => label(entry).length)) + 2);
  const lines: string[] = [];
  for (const [group, entries] of groups) {
    lines.push('', group ? `${group.heading}:` : 'Options:');
    for (const entry of entries) {
      const [first, ...rest] = entry[1].help.split('\n');
      const text = label(entry);
      if (text.length + 2 > column) lines.push(`  ${text}`, `  ${' '.repeat(column)}${first}`);
      else lines.push(`  ${text.padEnd(column)}${first}`);
      for (const more of rest) lines.push(`  ${' '.repeat(column)}${more}`);
    }
  }
  return lines;
}

export function helpText(name: string, command: Command): string {
  const parts = [usageLines(name, command).join('\n'), '', command.description, ...optionLines(command)];
  if (command.footer) parts.push('', command.footer);
  return parts.join('\n') + '\n';
}
