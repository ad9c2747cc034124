/**
 * Finding the database programs the agent (pg_dump, mysqldump), the CLI's restores and
 * the media server's restore drill (psql, pg_restore, mysql) run: first on PATH, then,
 * for PostgreSQL, in the versioned directories distributions install them in without
 * putting them on PATH: /usr/lib/postgresql/NN/bin (Debian, Ubuntu) and
 * /usr/pgsql-NN/bin (RHEL, Fedora), newest version first (a newer pg_restore reads older
 * dumps, not the other way round).
 */
import { accessSync, constants, readdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** The full path of executable `name` in the first of `dirs` that has it, or undefined. */
export function findInDirs(name: string, dirs: readonly string[]): string | undefined {
  for (const dir of dirs) {
    if (!dir) continue;
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The directories of env.PATH, in order. */
export function pathDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.PATH ?? '').split(delimiter).filter((d) => d !== '');
}

/** The full path of executable `name` on env.PATH, or undefined. */
export function findProgram(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return findInDirs(name, pathDirs(env));
}

/** /usr/lib/postgresql/NN/bin and /usr/pgsql-NN/bin that exist, newest version first. */
export function postgresBinDirs(): string[] {
  const versioned = (base: string, prefix: string): { dir: string; version: number }[] => {
    let names: string[];
    try {
      names = readdirSync(base);
    } catch {
      return [];
    }
    return names
      .filter((name) => name.startsWith(prefix) && /^\d+(\.\d+)?$/.test(name.slice(prefix.length)))
      .map((name) => ({ dir: join(base, name, 'bin'), version: Number(name.slice(prefix.length)) }));
  };
  return [...versioned('/usr/lib/postgresql', ''), ...versioned('/usr', 'pgsql-')].sort((a, b) => b.version - a.version).map((d) => d.dir);
}

/** A PostgreSQL client program (psql, pg_restore, pg_dump): on PATH, else the newest versioned bin directory that has it. */
export function findPostgresProgram(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return findProgram(name, env) ?? findInDirs(name, postgresBinDirs());
}
