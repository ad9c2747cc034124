/**
 * A postgres:// URL as the PostgreSQL tools take it: `--dbname=URL` without the password,
 * which goes in PGPASSWORD (never on a command line, where `ps` shows it). One reading
 * of the URL for the agent's pg_dump, the CLI's restores and the server's restore drill.
 */

export interface PostgresConnection {
  /** For messages: `postgres://host:port/db`, no user or password. */
  name: string;
  /** `postgresql://user@host:port/db?...` without the password: the tools' `--dbname=`. */
  url: string;
  /** The database name (decoded); '' when the URL names none. */
  database: string;
  /** The environment the tools run with (PGPASSWORD when the URL has a password). */
  env: NodeJS.ProcessEnv;
}

/** Reads a postgres:// or postgresql:// URL (already checked by parseSourceSpec or the policy). */
export function postgresConnection(text: string, env: NodeJS.ProcessEnv): PostgresConnection {
  const url = new URL(text);
  const password = decodeURIComponent(url.password);
  url.password = '';
  url.protocol = 'postgresql:';
  const host = url.hostname || url.searchParams.get('host') || 'localhost';
  const port = url.port || url.searchParams.get('port') || '5432';
  const db = url.pathname.replace(/^\//, '');
  const childEnv: NodeJS.ProcessEnv = { ...env };
  if (password !== '') childEnv.PGPASSWORD = password;
  return { name: `postgres://${nameHost(host)}:${port}/${db}`, url: url.toString(), database: decodeURIComponent(db), env: childEnv };
}

/** The same server and user, another database. */
export function otherDatabase(c: PostgresConnection, database: string): PostgresConnection {
  const url = new URL(c.url);
  url.pathname = `/${encodeURIComponent(database)}`;
  const db = encodeURIComponent(database);
  return { name: c.name.replace(/\/[^/]*$/, `/${db}`), url: url.toString(), database, env: c.env };
}

/** A host for the target name: a socket directory percent-encoded (as libpq URIs write it), a bare IPv6 address in brackets. */
function nameHost(host: string): string {
  if (host.startsWith('/')) return encodeURIComponent(host);
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}
