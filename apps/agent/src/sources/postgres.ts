/**
 * postgres:// sources: `pg_dump` of one database, streamed from its stdout.
 *
 *   pg_dump --dbname=postgres://user@host:port/db?... --format=custom --compress=0 --no-password
 *
 * The password from the URL goes to pg_dump in PGPASSWORD, never on its command line.
 * Custom format is written uncompressed (-Z0): a compressed dump changes almost
 * everywhere when a few rows change, which defeats deduplication, and the repository
 * compresses chunks itself. Plain format is SQL text for psql.
 */
import type { PostgresSourceSpec } from '@hoard/protocol/agent';
import { postgresConnection } from '@hoard/repository';
import { spawnSource } from './process.js';
import type { SourceTarget } from './source.js';

export interface Invocation {
  /** The target name: `postgres://host:port/db`, no user or password. */
  name: string;
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}

/** What runs for a postgres spec (exported so tests can check that no password reaches argv). */
export function pgDumpInvocation(spec: PostgresSourceSpec, env: NodeJS.ProcessEnv): Invocation {
  const c = postgresConnection(spec.url, env);
  return {
    name: c.name,
    command: 'pg_dump',
    args: [
      `--dbname=${c.url}`,
      spec.format === 'plain' ? '--format=plain' : '--format=custom',
      ...(spec.format === 'custom' ? ['--compress=0'] : []),
      '--no-password',
    ],
    env: c.env,
  };
}

export function postgresTarget(spec: PostgresSourceSpec, env: NodeJS.ProcessEnv): SourceTarget {
  const inv = pgDumpInvocation(spec, env);
  return {
    name: inv.name,
    kind: 'stream',
    chunking: 'db-dump',
    open: (signal) =>
      spawnSource({
        target: inv.name,
        program: 'pg_dump',
        command: inv.command,
        args: inv.args,
        env: inv.env,
        packageHint: 'postgresql-client',
        signal,
      }),
  };
}
