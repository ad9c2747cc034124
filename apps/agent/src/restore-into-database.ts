/**
 * A restore run into a database (the console's "into a PostgreSQL or MySQL database"):
 * the dump snapshot streams from the server's restore route (framed: every chunk checked
 * there, and the stream's verdict arrives before the stream ends) into the database's own
 * tool on this host (DatabaseSink: pg_restore or psql in one transaction, mysql). The tool
 * is told the dump is complete (stdin closed) only after the verdict; a failed check kills
 * it first, so psql's single transaction rolls back.
 *
 * The URL carries no password (the server refuses one: run records are shown to every
 * reader); this host's ~/.pgpass, PGPASSWORD, ~/.my.cnf or MYSQL_PWD supply it, as for
 * its dumps.
 */
import { parseSourceSpec, type HoardClient, type RestoreResult, type RestoreRunSpec } from '@hoard/protocol/agent';
import { DatabaseSink, postgresConnection, type DatabaseTarget } from '@hoard/repository';
import { mysqldumpInvocation } from './sources/mysql.js';

/** The database a URL names, as DatabaseSink runs its tools against it. */
export function databaseTarget(url: string, env: NodeJS.ProcessEnv): DatabaseTarget {
  const spec = parseSourceSpec(url);
  if (spec.type === 'postgres') {
    const c = postgresConnection(spec.url, env);
    return { engine: 'postgres', name: c.name, database: c.database, connectArgs: [`--dbname=${c.url}`], env: c.env };
  }
  if (spec.type === 'mysql') {
    const inv = mysqldumpInvocation(spec, env);
    // mysqldump's connection options (--host= ... -- DB) are the mysql client's too.
    const from = inv.args.findIndex((a) => a.startsWith('--host='));
    return { engine: 'mysql', name: inv.name, database: inv.args.at(-1) ?? '', connectArgs: inv.args.slice(from), env: inv.env };
  }
  throw new Error(`${url} is not a postgres:// or mysql:// URL`);
}

export async function restoreIntoDatabase(
  client: HoardClient,
  job: string,
  spec: RestoreRunSpec & { database: string },
  options: { env: NodeJS.ProcessEnv; signal?: AbortSignal; progress: (bytes: number, total?: number) => void },
): Promise<RestoreResult> {
  const sink = new DatabaseSink(databaseTarget(spec.database, options.env), { dumpBytes: spec.logicalBytes });
  let bytes = 0;
  try {
    for await (const piece of client.restoreRange(job, spec.snapshot, 0, spec.logicalBytes, options.signal)) {
      await sink.write(piece);
      bytes += piece.length;
      options.progress(bytes, spec.logicalBytes);
    }
    await sink.finish();
  } catch (err) {
    await sink.abort();
    throw err;
  }
  return { snapshot: spec.snapshot, path: sink.target.name, bytes, wrote: 'database' };
}
