/** pmu user add | remove: changes the users file and tells a running server to reload it. */
import * as fs from 'node:fs';
import { addUser, removeUser, UserDirectory } from '../../server/users';
import { PmuError } from '../../unit/errors';
import { out, UsageError } from '../args';
import { Command } from '../command';
import { checkDataDir, dataDir, ensureAdmin, runningServer } from '../data-dir';

const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export const user: Command = {
  summary: 'add or remove a user (prints a new user\'s secret)',
  forms: ['add NAME [--admin] [--data DIR] [--users FILE]', 'remove NAME [--data DIR] [--users FILE]'],
  description: `add: adds NAME to the users file (DIR/users.json, default DIR ./pmu-data, or PMU_USERS_FILE)
with a new random secret, printed once on stdout. --admin lets the user create, delete and
grant regions. remove: deletes NAME; a running server closes that user's connections.
A running \`pmu serve\` on DIR is told to reload the file at once (SIGHUP); it also watches it.`,
  options: {
    admin: { type: 'boolean', help: 'add: the user may create, delete and grant regions' },
    data: { type: 'string', value: 'DIR', help: 'data directory (default ./pmu-data)' },
    users: { type: 'string', value: 'FILE', help: 'users file (default DIR/users.json, or PMU_USERS_FILE)' },
  },
  async run({ values, positionals }) {
    const [action, name, ...rest] = positionals;
    if (action !== 'add' && action !== 'remove') throw new UsageError(action ? `unknown action ${JSON.stringify(action)}; use add or remove` : 'say what to do: add or remove');
    if (!name) throw new UsageError(`missing NAME: say which user to ${action}`);
    if (rest.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(rest[0])}`);
    // Names appear in grants (USER=rw), in PMU_USER and in logs: keep them to a shell-safe set.
    if (!USER_NAME.test(name)) throw new UsageError(`a user name is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit; got ${JSON.stringify(name)}`);
    const layout = dataDir(values.data as string | undefined);
    const file = (values.users as string | undefined) ?? layout.usersFile;
    if (action === 'add') {
      // On a fresh data directory the admin comes first, so the PMM stays manageable.
      if (file === layout.usersFile) ensureAdmin(layout);
      const secret = addUser(file, name, { admin: values.admin === true });
      out(secret);
      process.stderr.write(`added ${values.admin ? 'admin ' : ''}user '${name}' to ${file}; connect with PMU_USER=${name} PMU_SECRET=<the secret above>\n`);
    } else {
      // The users file is checked as it is loaded; its data directory, when it holds it, too.
      if (file === layout.usersFile && fs.existsSync(layout.dir)) checkDataDir(layout);
      const directory = UserDirectory.load(file);
      const record = directory.get(name);
      if (record?.admin && ![...Object.values(directory.toJSON().users)].some((other) => other !== record && other.admin)) {
        throw new PmuError('EINVAL', `'${name}' is the last admin in ${file}; add another admin first (pmu user add NAME --admin)`);
      }
      removeUser(file, name);
      process.stderr.write(`removed user '${name}' from ${file}\n`);
    }
    // A pid file that is not trusted is said, and signals no one: the server sees the change by
    // its watch of the users file all the same.
    const pid = runningServer(layout, (why) => process.stderr.write(`pmu user: warning: not signalling the server: ${why}; a running server still reloads ${file} when it sees it change\n`));
    if (pid !== undefined) {
      process.kill(pid, 'SIGHUP');
      process.stderr.write(`told the running server (pid ${pid}) to reload ${file}\n`);
    }
    return 0;
  },
};
