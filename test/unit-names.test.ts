/**
 * Names someone else chose never rewrite a terminal: control characters (newlines, escape
 * sequences) are refused when a region is made, locally and over the wire, and CLI output
 * escapes any that a name made before this rule holds. Bound: ~2 s.
 */
import { PersistentMemoryUnit } from '../lib/unit/unit';
import { printable } from '../lib/unit/validate';
import { startServer } from './fixtures/net-harness';
import { removeTempDirs, tempFile } from './helpers/temp';

afterAll(removeTempDirs);

const hostile = ['two\nlines', 'red\u001b[31mtext', 'bell\u0007', 'del\u007f', 'c1\u009b2J'];

test('a region name with a control character is refused at creation, with EINVAL that says why', async () => {
  const unit = PersistentMemoryUnit.open(tempFile(), { size: 1 << 20 });
  try {
    for (const name of hostile) expect(() => unit.createRegion(name, 4096)).toThrow(expect.objectContaining({ code: 'EINVAL', message: expect.stringContaining('must not hold control characters') }));
    expect(unit.listRegions()).toEqual([]);
    expect(unit.createRegion('plain-name.ünïcode', 4096).name).toBe('plain-name.ünïcode');
  } finally {
    await unit.close();
  }
});

test("over the wire too: the client refuses before sending, and the server's unit refuses the same name", async () => {
  const h = await startServer();
  try {
    const admin = await h.connect('admin');
    await expect(admin.createRegion('a\nb', 4096)).rejects.toMatchObject({ code: 'EINVAL' });
    expect(() => h.unit.createRegion('x\u001b', 4096)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  } finally {
    await h.close();
  }
});

test('printable escapes what a name made before the rule may hold', () => {
  expect(printable('two\nlines')).toBe('two\\nlines');
  expect(printable('red\u001b[31m')).toBe('red\\u001b[31m');
  expect(printable('tab\there')).toBe('tab\\there');
  expect(printable('c1\u009b')).toBe('c1\\u009b');
  expect(printable('plain-ünïcode')).toBe('plain-ünïcode');
});
