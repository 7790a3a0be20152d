/** Temporary directories for tests, on the work tree's file system (ext4 here, not tmpfs). */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const made: string[] = [];

export function tempDir(prefix = 'pmu-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(dir);
  return dir;
}

export function tempFile(name = 'unit.pmu'): string {
  return path.join(tempDir(), name);
}

/** Call from afterAll: removes every directory tempDir() made in this test file. */
export function removeTempDirs(): void {
  for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}
