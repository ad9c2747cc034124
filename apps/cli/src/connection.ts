/**
 * The saved connection of `hoard login`: {server, token} in
 * `$XDG_CONFIG_HOME/hoard/connection.json` (default `~/.config/hoard/connection.json`),
 * the file mode 0600 and its directory 0700: the token is the server's admin token.
 */
import { chmod, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { UsageError } from './errors.js';

export interface SavedConnection {
  server: string;
  token: string;
}

/** Where the saved connection lives. A relative XDG_CONFIG_HOME is ignored, as the XDG spec says. */
export function connectionPath(env: NodeJS.ProcessEnv = process.env): string {
  const configHome = env.XDG_CONFIG_HOME && isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : join(homedir(), '.config');
  return join(configHome, 'hoard', 'connection.json');
}

/** The saved connection, or undefined when there is none. A file that is not one is a usage error naming it. */
export async function readConnection(path = connectionPath()): Promise<SavedConnection | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UsageError(`cannot read the saved connection ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const c = parsed as Partial<SavedConnection> | undefined;
  if (typeof c?.server !== 'string' || typeof c.token !== 'string' || c.server === '' || c.token === '') {
    throw new UsageError(`${path} is not a saved connection ({"server", "token"}): run \`hoard login --server URL\` again, or \`hoard logout\` to remove it`);
  }
  const mode = (await stat(path)).mode & 0o777;
  if ((mode & 0o077) !== 0)
    process.stderr.write(`hoard: warning: ${path} holds a token and is readable by others (mode ${mode.toString(8).padStart(4, '0')}): chmod 600 ${path}\n`);
  return { server: c.server, token: c.token };
}

/** Writes the connection (a new file renamed into place, so a reader never sees half of it); returns its path. */
export async function saveConnection(connection: SavedConnection, path = connectionPath()): Promise<string> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const partial = `${path}.${process.pid}.partial`;
  const file = await open(partial, 'w', 0o600);
  try {
    await file.chmod(0o600);
    await file.writeFile(`${JSON.stringify({ server: connection.server, token: connection.token }, null, 2)}\n`);
    await file.sync();
  } finally {
    await file.close();
  }
  try {
    await rename(partial, path);
  } catch (err) {
    await rm(partial, { force: true });
    throw err;
  }
  return path;
}

/** Removes the saved connection; resolves to whether there was one. */
export async function removeConnection(path = connectionPath()): Promise<boolean> {
  const existed = (await stat(path).catch(() => undefined)) !== undefined;
  await rm(path, { force: true });
  return existed;
}

/** Two server URLs name the same server when their origins match (`http://backup:8420/` and `http://backup:8420`). */
export function sameServer(a: string, b: string): boolean {
  try {
    return new URL(a).origin === new URL(b).origin;
  } catch {
    return a === b;
  }
}
