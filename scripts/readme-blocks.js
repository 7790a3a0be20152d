#!/usr/bin/env node
'use strict';
/**
 * The code blocks of README.md, for the test that runs them (test/readme.test.ts) and for CI.
 * Each fenced block is preceded by a marker comment naming it, invisible on the rendered page:
 *   <!-- block: NAME -->                  run by the test
 *   <!-- block: NAME (not run: REASON) --> shown only; the reason says why
 * A block without a marker is an error: no block escapes the test unnoticed.
 *   node scripts/readme-blocks.js README.md            all blocks as JSON
 *   node scripts/readme-blocks.js README.md --id NAME  one block's code
 */
const fs = require('node:fs');

function readmeBlocks(file) {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const blocks = [];
  let marker;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const named = /^<!-- block: ([\w-]+)(?: \(not run: (.+)\))? -->$/.exec(line.trim());
    if (named) {
      marker = { name: named[1], skip: named[2], line: i + 1 };
      continue;
    }
    const fence = /^(```+)(\w*)\s*$/.exec(line);
    if (!fence) continue;
    const end = lines.findIndex((l, j) => j > i && l.startsWith(fence[1]) && l.trim() === fence[1]);
    if (end < 0) throw new Error(`${file}:${i + 1}: unterminated code block`);
    if (!marker || marker.line !== i) throw new Error(`${file}:${i + 1}: code block without a <!-- block: NAME --> marker on the line before`);
    blocks.push({ name: marker.name, lang: fence[2], line: i + 1, skip: marker.skip, code: lines.slice(i + 1, end).join('\n') + '\n' });
    marker = undefined;
    i = end;
  }
  return blocks;
}

if (require.main === module) {
  const [file, flag, id] = process.argv.slice(2);
  const blocks = readmeBlocks(file);
  if (flag === '--id') {
    const block = blocks.find((b) => b.name === id);
    if (!block) {
      process.stderr.write(`no block named ${id} in ${file}\n`);
      process.exit(1);
    }
    process.stdout.write(block.code);
  } else {
    process.stdout.write(JSON.stringify(blocks, null, 2) + '\n');
  }
}

module.exports = { readmeBlocks };
