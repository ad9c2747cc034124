/**
 * The database part of a restore drill (a policy's `drill:`, docs/policies.md): the job's
 * newest PostgreSQL dump restored into a scratch database, and the policy's query run
 * there, which must succeed and return at least one row.
 *
 * It runs on the media server's host: the server holds the repository and runs the drill
 * on its own schedule, whether or not the job's agent is online, and the agent's host (a
 * production database server, often) carries no restore load. The PostgreSQL server of
 * `postgres-url` must be reachable from the media server, and the PostgreSQL client
 * programs (psql, pg_restore) installed there.
 *
 * Steps, each through psql/pg_restore of that server's connection (the password in
 * PGPASSWORD, or the server user's ~/.pgpass):
 *   1. CREATE DATABASE hoard_drill_<time>_<random>   (connected to the URL's database)
 *   2. the dump streamed into it (DatabaseSink: pg_restore for a custom-format dump, psql
 *      for plain SQL), every chunk checked on the way as in any restore
 *   3. psql -X -A -v ON_ERROR_STOP=1 -c QUERY in the scratch database; the row count is
 *      psql's footer `(N rows)`
 *   4. DROP DATABASE ... WITH (FORCE), also when a step failed.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { DrillDatabase, DrillPolicy } from '@hoard/protocol';
import {
  DatabaseSink,
  DatabaseToolError,
  findPostgresProgram,
  otherDatabase,
  postgresConnection,
  restore,
  type PostgresConnection,
  type Repository,
  type SnapshotInfo,
} from '@hoard/repository';

const OUTPUT_LIMIT = 64 * 1024;
const FIRST_ROW_CHARS = 200;

/** The drill's query failed, or returned no row, in the restored database. */
export class DrillQueryError extends Error {
  override readonly name = 'DrillQueryError';
  readonly code = 'work_failed';
}

/** A new scratch database name: lower case, so that it needs no quoting rules beyond the double quotes. */
export function scratchDatabaseName(now: Date): string {
  return `hoard_drill_${now.getTime().toString(36)}_${randomBytes(3).toString('hex')}`;
}

/** Runs psql with `args` on `conn`; resolves its stdout, rejects with its stderr tail. */
async function psql(conn: PostgresConnection, args: string[], what: string): Promise<string> {
  const program = findPostgresProgram('psql', conn.env);
  if (!program)
    throw new DatabaseToolError(
      `the restore drill into ${conn.name} needs psql on the media server's host, which is not installed or not on PATH (Debian/Ubuntu: apt-get install postgresql-client)`,
    );
  const child = spawn(program, [`--dbname=${conn.url}`, '-X', '-A', '-v', 'ON_ERROR_STOP=1', '--no-password', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: conn.env,
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => {
    if (out.length < OUTPUT_LIMIT) out += b.toString('utf8');
  });
  child.stderr.on('data', (b: Buffer) => (err = (err + b.toString('utf8')).slice(-2048)));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', (e) => reject(new DatabaseToolError(`${what}: could not start psql (${program}): ${e.message}`)));
    child.once('close', resolve);
  });
  if (code !== 0) throw new DatabaseToolError(`${what} failed (psql exit ${code}): ${err.trim() || 'no message on stderr'}`);
  return out;
}

const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** psql's unaligned output without -t: header, rows, then the footer `(N rows)`. */
export function parseRows(output: string): { rows: number; firstRow: string | null } | undefined {
  const lines = output.replace(/\n+$/, '').split('\n');
  const footer = /^\((\d+) rows?\)$/.exec(lines.at(-1) ?? '');
  if (!footer) return undefined;
  const rows = Number(footer[1]);
  return { rows, firstRow: rows > 0 && lines.length >= 3 ? lines[1]!.slice(0, FIRST_ROW_CHARS) : null };
}

/**
 * Restores `snapshot` into a new scratch database on the policy's server, runs its query,
 * drops the database. Resolves the restored bytes and what the query returned; rejects
 * with the database's own message (DatabaseToolError for the restore, DrillQueryError
 * for the query).
 */
export async function drillIntoPostgres(
  repo: Repository,
  snapshot: SnapshotInfo,
  drill: DrillPolicy,
  now: Date,
): Promise<{ bytes: number; database: DrillDatabase }> {
  const admin0 = postgresConnection(drill.postgresUrl, process.env);
  const admin = admin0.database === '' ? otherDatabase(admin0, 'postgres') : admin0;
  const name = scratchDatabaseName(now);
  const scratch = otherDatabase(admin, name);
  const server = admin.name.replace(/\/[^/]*$/, '');
  await psql(admin, ['-q', '-c', `CREATE DATABASE ${quoteIdent(name)}`], `creating the scratch database ${name} on ${server}`);
  const database: DrillDatabase = { server, database: name, tool: '', query: drill.query, rows: null, firstRow: null };
  try {
    const sink = new DatabaseSink({ engine: 'postgres', name: scratch.name, database: name, connectArgs: [`--dbname=${scratch.url}`], env: scratch.env });
    const restored = await restore(repo, snapshot, sink);
    database.tool = sink.tool;
    let output: string;
    try {
      output = await psql(scratch, ['-c', drill.query], 'the query');
    } catch (err) {
      throw new DrillQueryError(
        `the drill query ${JSON.stringify(drill.query)} failed in the restored database ${name} on ${server}: ${(err as Error).message.replace(/^the query failed \(psql exit \d+\): /, '')}`,
      );
    }
    const rows = parseRows(output);
    if (!rows)
      throw new DrillQueryError(
        `the drill query ${JSON.stringify(drill.query)} returned no rows in the restored database ${name} on ${server} (it must be a query that returns rows, e.g. select count(*) from accounts)`,
      );
    if (rows.rows === 0)
      throw new DrillQueryError(
        `the drill query ${JSON.stringify(drill.query)} returned 0 rows in the restored database ${name} on ${server}; it must return at least one`,
      );
    database.rows = rows.rows;
    database.firstRow = rows.firstRow;
    return { bytes: restored.bytesWritten, database };
  } finally {
    // WITH (FORCE) (PostgreSQL 13+): a restore that was stopped may leave its session behind for a moment.
    await psql(admin, ['-q', '-c', `DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`], `dropping the scratch database ${name} on ${server}`);
  }
}
