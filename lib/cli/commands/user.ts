/** pmu user add | remove: changes the users file and tells a running server to reload it. */
import { addUser, removeUser, UserDirectory } from '../../server/users';
import { PmuError } from '../../unit/errors';
import { out, parse, UsageError } from '../args';
import { Command } from '../command';
import { dataDir, ensureAdmin, runningServer } from '../data-dir';

const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export const user: Command = {
  summary: 'add or remove a user (prints a new user\'s secret)',
  usage: `Usage: pmu user add NAME [--admin] [--data DIR] [--users FILE]
       pmu user remove NAME [--data DIR] [--users FILE]

add: adds NAME to the users file (DIR/users.json, default DIR ./pmu-data, or PMU_USERS_FILE)
with a new random secret, printed once on stdout. --admin lets the user create, delete and
grant regions. remove: deletes NAME; a running server closes that user's connections.
A running \`pmu serve\` on DIR is told to reload the file at once (SIGHUP); it also watches it.`,
  async run(argv) {
    const { values, positionals } = parse(argv, { admin: { type: 'boolean' }, data: { type: 'string' }, users: { type: 'string' } });
    const [action, name, ...rest] = positionals;
    if (action !== 'add' && action !== 'remove') throw new UsageError(action ? `unknown action ${JSON.stringify(action)}; use add or remove` : 'say what to do: add or remove');
    if (!name) throw new UsageError(`pmu user ${action} needs a NAME`);
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
      const directory = UserDirectory.load(file);
      const record = directory.get(name);
      if (record?.admin && ![...Object.values(directory.toJSON().users)].some((other) => other !== record && other.admin)) {
        throw new PmuError('EINVAL', `'${name}' is the last admin in ${file}; add another admin first (pmu user add NAME --admin)`);
      }
      removeUser(file, name);
      process.stderr.write(`removed user '${name}' from ${file}\n`);
    }
    const pid = runningServer(layout);
    if (pid !== undefined) {
      process.kill(pid, 'SIGHUP');
      process.stderr.write(`told the running server (pid ${pid}) to reload ${file}\n`);
    }
    return 0;
  },
};
