/**
 * mysql:// and mariadb:// sources: `mysqldump` (or `mariadb-dump` where mysqldump is
 * not installed) of one database, streamed from its stdout.
 *
 *   mysqldump --single-transaction --routines --events --triggers --no-tablespaces
 *             --host=H [--port=P] [--user=U] [--socket=S] -- DB
 *
 * The password from the URL goes in MYSQL_PWD, never on the command line.
 * --single-transaction gives a consistent snapshot of InnoDB tables without locking
 * them; --no-tablespaces spares the backup user the PROCESS privilege (tablespace
 * definitions do not belong to a single database's dump).
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { MysqlSourceSpec } from '@hoard/protocol/agent';
import type { Invocation } from './postgres.js';
import { spawnSource } from './process.js';
import type { SourceTarget } from './source.js';

export const MYSQLDUMP_FLAGS = ['--single-transaction', '--routines', '--events', '--triggers', '--no-tablespaces'];

/** What runs for a mysql spec (exported so tests can check that no password reaches argv). */
export function mysqldumpInvocation(spec: MysqlSourceSpec, env: NodeJS.ProcessEnv): Invocation {
  const url = new URL(spec.url);
  const host = url.hostname || 'localhost';
  const user = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  const db = decodeURIComponent(url.pathname.replace(/^\//, ''));
  const socket = url.searchParams.get('socket');
  const args = [...MYSQLDUMP_FLAGS, `--host=${host}`];
  if (url.port) args.push(`--port=${url.port}`);
  if (user) args.push(`--user=${user}`);
  if (socket) args.push(`--socket=${socket}`);
  args.push('--', db);
  const childEnv: NodeJS.ProcessEnv = { ...env };
  if (password !== '') childEnv.MYSQL_PWD = password;
  const command = findOnPath('mysqldump', env) ? 'mysqldump' : findOnPath('mariadb-dump', env) ? 'mariadb-dump' : 'mysqldump';
  return { name: `mysql://${host}:${url.port || '3306'}/${url.pathname.replace(/^\//, '')}`, command, args, env: childEnv };
}

export function mysqlTarget(spec: MysqlSourceSpec, env: NodeJS.ProcessEnv): SourceTarget {
  return {
    name: mysqldumpInvocation(spec, env).name,
    kind: 'stream',
    chunking: 'db-dump',
    open: (signal) => {
      // Decided at open time: the dump program may have been installed since resolve.
      const inv = mysqldumpInvocation(spec, env);
      return spawnSource({
        target: inv.name,
        program: inv.command,
        command: inv.command,
        args: inv.args,
        env: inv.env,
        packageHint: 'mariadb-client (or default-mysql-client)',
        signal,
      });
    },
  };
}

/** Whether an executable `name` is on env.PATH. */
export function findOnPath(name: string, env: NodeJS.ProcessEnv): boolean {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return true;
    } catch {
      // not here
    }
  }
  return false;
}
