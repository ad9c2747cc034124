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
import type { PostgresSourceSpec } from '@hoard/protocol';
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
  const url = new URL(spec.url);
  const password = decodeURIComponent(url.password);
  url.password = '';
  url.protocol = 'postgresql:';
  const host = url.hostname || url.searchParams.get('host') || 'localhost';
  const port = url.port || url.searchParams.get('port') || '5432';
  const db = url.pathname.replace(/^\//, '');
  const childEnv: NodeJS.ProcessEnv = { ...env };
  if (password !== '') childEnv.PGPASSWORD = password;
  return {
    name: `postgres://${nameHost(host)}:${port}/${db}`,
    command: 'pg_dump',
    args: [
      `--dbname=${url.toString()}`,
      spec.format === 'plain' ? '--format=plain' : '--format=custom',
      ...(spec.format === 'custom' ? ['--compress=0'] : []),
      '--no-password',
    ],
    env: childEnv,
  };
}

/** A host for the target name: a socket directory percent-encoded (as libpq URIs write it), a bare IPv6 address in brackets. */
function nameHost(host: string): string {
  if (host.startsWith('/')) return encodeURIComponent(host);
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
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
