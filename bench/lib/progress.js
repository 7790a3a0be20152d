'use strict';
// A progress bar on stderr while the bench runs; plain step lines when stderr is not a TTY
// (CI logs), so the output stays readable either way.
class Progress {
  constructor(total) {
    this.total = total;
    this.done = 0;
    this.tty = process.stderr.isTTY;
  }

  step(label) {
    this.label = label;
    if (this.tty) this.draw();
    else process.stderr.write(`[${this.done + 1}/${this.total}] ${label}\n`);
  }

  tick() {
    this.done = Math.min(this.total, this.done + 1);
    if (this.tty) this.draw();
  }

  draw() {
    const width = 30;
    const filled = Math.round((this.done / this.total) * width);
    const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
    process.stderr.write(`\r${bar} ${this.done}/${this.total} ${(this.label || '').padEnd(50).slice(0, 50)}`);
  }

  finish() {
    if (this.tty) process.stderr.write('\n');
  }
}

module.exports = { Progress };
