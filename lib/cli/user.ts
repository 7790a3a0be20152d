/** pmu user add: adds a user to the users file, offline, and prints the new secret once. */
import { addUser } from '../net/users';
import { out, parse, UsageError } from './args';
import { Command } from './command';
import { dataDir, ensureAdmin } from './data-dir';

const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export const user: Command = {
  summary: 'add a user (offline) and print its secret',
  usage: `Usage: pmu user add NAME [--admin] [--data DIR] [--users FILE]

Adds NAME to the users file (DIR/users.json, default DIR ./pmu-data, or PMU_USERS_FILE) with a
new random secret, printed once on stdout. A running server picks the change up at the next
connection. --admin lets the user create, delete and grant regions.`,
  async run(argv) {
    const { values, positionals } = parse(argv, { admin: { type: 'boolean' }, data: { type: 'string' }, users: { type: 'string' } });
    const [action, name, ...rest] = positionals;
    if (action !== 'add') throw new UsageError(action ? `unknown action ${JSON.stringify(action)}; use add` : 'say what to do: add');
    if (!name) throw new UsageError('pmu user add needs a NAME');
    if (rest.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(rest[0])}`);
    // Names appear in grants (USER=rw), in PMU_USER and in logs: keep them to a shell-safe set.
    if (!USER_NAME.test(name)) throw new UsageError(`a user name is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit; got ${JSON.stringify(name)}`);
    const layout = dataDir(values.data as string | undefined);
    const file = (values.users as string | undefined) ?? layout.usersFile;
    // On a fresh data directory the admin comes first, so the PMM stays manageable.
    if (file === layout.usersFile) ensureAdmin(layout);
    const secret = addUser(file, name, { admin: values.admin === true });
    out(secret);
    process.stderr.write(`added ${values.admin ? 'admin ' : ''}user '${name}' to ${file}; connect with PMU_USER=${name} PMU_SECRET=<the secret above>\n`);
    return 0;
  },
};
