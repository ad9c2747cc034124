/**
 * Source specs: the one-line text an admin writes to say what a backup job reads.
 *
 *   file:/abs/path                       a regular file or a block device, read byte for byte
 *   dir:/abs/path                        a directory tree (parsed only, for now)
 *   vm:/abs/glob                         VM images matching a glob; qcow2 read as the guest sees it
 *   libvirt:PATTERN[?uri=URI]            the disks of the libvirt domains whose names match PATTERN
 *   postgres://user:pass@host:port/db[?format=custom|plain]   (also postgresql://) via pg_dump
 *   mysql://user:pass@host:port/db[?socket=/path]             (also mariadb://) via mysqldump
 *   cmd:any shell command                the command's standard output
 *
 * `parseSourceSpec` validates and returns a discriminated union; `formatSourceSpec` prints
 * it back (passwords redacted). Surrounding whitespace is ignored. No dependencies, so
 * the CLI, the media server and the agent all validate the same way. See docs/sources.md.
 */

import type { ErrorCode } from '@hoard/errors';

export interface FileSourceSpec {
  type: 'file';
  /** Absolute path of a regular file or a block device. */
  path: string;
}

export interface DirSourceSpec {
  type: 'dir';
  /** Absolute path of a directory. */
  path: string;
}

export interface VmSourceSpec {
  type: 'vm';
  /** Absolute path or glob (`*`, `?`, `[...]` in any segment). */
  glob: string;
}

export interface LibvirtSourceSpec {
  type: 'libvirt';
  /** Domain-name pattern (`*`, `?`, `[...]`), e.g. `*` or `web-*`. */
  pattern: string;
  /** libvirt connection URI (`virsh -c`); absent: virsh's default connection. */
  uri?: string;
}

export type PostgresDumpFormat = 'custom' | 'plain';

export interface PostgresSourceSpec {
  type: 'postgres';
  /**
   * The connection URL as written, password included, without the `format` parameter
   * (other parameters such as `sslmode` or `host` are kept and passed on to libpq).
   */
  url: string;
  /** pg_dump output format: `custom` (-Fc, the default) or `plain` (SQL text). */
  format: PostgresDumpFormat;
}

export interface MysqlSourceSpec {
  type: 'mysql';
  /** The connection URL as written, password included. */
  url: string;
}

export interface CmdSourceSpec {
  type: 'cmd';
  /** A shell command line whose standard output is the backup stream. */
  command: string;
}

export type SourceSpec = FileSourceSpec | DirSourceSpec | VmSourceSpec | LibvirtSourceSpec | PostgresSourceSpec | MysqlSourceSpec | CmdSourceSpec;

export type SourceType = SourceSpec['type'];

/** A source spec that does not parse; the message says what is wrong and what would be right. */
export class SourceSpecError extends Error {
  override name = 'SourceSpecError';
  readonly code: ErrorCode = 'invalid_source';
  /** The spec text as given (passwords redacted when recognisable). */
  readonly spec: string;
  constructor(message: string, spec: string) {
    super(message);
    this.spec = spec;
  }
}

const EXAMPLES = {
  file: 'file:/var/lib/libvirt/images/web.img',
  dir: 'dir:/srv/www',
  vm: 'vm:/var/lib/libvirt/images/*.qcow2',
  libvirt: 'libvirt:web-*?uri=qemu:///system',
  postgres: 'postgres://backup:secret@db1:5432/shop',
  mysql: 'mysql://backup:secret@db1:3306/shop',
  cmd: 'cmd:tar -C /etc -cf - .',
} as const;

const KNOWN = 'file:, dir:, vm:, libvirt:, postgres://, postgresql://, mysql://, mariadb://, cmd:';

/** Parses and validates a source spec; throws SourceSpecError. */
export function parseSourceSpec(text: string): SourceSpec {
  if (typeof text !== 'string') throw new SourceSpecError(`a source spec must be a string, e.g. ${EXAMPLES.vm}`, String(text));
  const raw = text;
  const spec = text.trim();
  const fail = (message: string): never => {
    throw new SourceSpecError(message, redactLoose(raw));
  };
  if (spec === '') fail(`empty source spec; expected one of ${KNOWN}, e.g. ${EXAMPLES.vm}`);
  if (spec.includes('\0')) fail('a source spec must not contain NUL bytes');

  const colon = spec.indexOf(':');
  const scheme = colon > 0 && /^[A-Za-z][A-Za-z0-9+.-]*$/.test(spec.slice(0, colon)) ? spec.slice(0, colon).toLowerCase() : '';
  const rest = scheme ? spec.slice(colon + 1) : '';
  switch (scheme) {
    case 'file':
      return { type: 'file', path: absolutePath('file', rest, EXAMPLES.file, fail) };
    case 'dir':
      return { type: 'dir', path: absolutePath('dir', rest, EXAMPLES.dir, fail) };
    case 'vm': {
      const glob = absolutePath('vm', rest, EXAMPLES.vm, fail, 'an absolute path or glob');
      const problem = globProblem(glob);
      if (problem) fail(`"vm:" glob ${JSON.stringify(glob)}: ${problem}, e.g. ${EXAMPLES.vm}`);
      return { type: 'vm', glob };
    }
    case 'libvirt':
      return parseLibvirt(rest, fail);
    case 'postgres':
    case 'postgresql':
      return parsePostgres(spec, fail);
    case 'mysql':
    case 'mariadb':
      return parseMysql(spec, fail);
    case 'cmd': {
      const command = rest.trim();
      if (command === '') fail(`"cmd:" needs a command, e.g. ${EXAMPLES.cmd}`);
      return { type: 'cmd', command };
    }
    default:
      if (spec.startsWith('/')) fail(`a source spec needs a type: write file:${spec} for one file or block device, or vm:${spec} for VM images`);
      if (scheme) fail(`unknown source type "${scheme}:"; expected one of ${KNOWN}`);
      return fail(`a source spec starts with its type, one of ${KNOWN}, e.g. ${EXAMPLES.vm}`);
  }
}

/** Prints a spec back in the form parseSourceSpec reads, with passwords replaced by `***`. */
export function formatSourceSpec(spec: SourceSpec): string {
  switch (spec.type) {
    case 'file':
      return `file:${spec.path}`;
    case 'dir':
      return `dir:${spec.path}`;
    case 'vm':
      return `vm:${spec.glob}`;
    case 'libvirt':
      return spec.uri === undefined ? `libvirt:${spec.pattern}` : `libvirt:${spec.pattern}?uri=${spec.uri}`;
    case 'postgres': {
      let url = redactUrlPassword(spec.url);
      if (spec.format !== 'custom') url += `${url.includes('?') ? '&' : '?'}format=${spec.format}`;
      return url;
    }
    case 'mysql':
      return redactUrlPassword(spec.url);
    case 'cmd':
      return `cmd:${spec.command}`;
  }
}

/** True when `text` contains a glob metacharacter (`*`, `?` or `[`). */
export function hasGlobMagic(text: string): boolean {
  return /[*?[]/.test(text);
}

type Fail = (message: string) => never;

function absolutePath(type: string, path: string, example: string, fail: Fail, what = 'an absolute path'): string {
  if (path === '') fail(`"${type}:" needs ${what}, e.g. ${example}`);
  if (!path.startsWith('/')) fail(`"${type}:" needs ${what} (starting with /), not ${JSON.stringify(path)}, e.g. ${example}`);
  if (path.split('/').includes('..')) fail(`"${type}:" path ${JSON.stringify(path)} must not contain ".." segments; write the path it means, e.g. ${example}`);
  return path;
}

/** Why a glob (one path segment or a whole path) is malformed, or undefined. */
function globProblem(glob: string): string | undefined {
  for (let i = 0; i < glob.length; i++) {
    if (glob[i] !== '[') continue;
    let j = i + 1;
    if (glob[j] === '!' || glob[j] === '^') j++;
    if (glob[j] === ']') j++; // a leading ] is literal
    while (j < glob.length && glob[j] !== ']') {
      if (glob[j] === '/') return `"[" at position ${i} is closed only after a "/" (a [...] class matches one character of one path segment)`;
      j++;
    }
    if (j >= glob.length) return `"[" at position ${i} is never closed with "]"`;
    i = j;
  }
  return undefined;
}

function parseLibvirt(rest: string, fail: Fail): LibvirtSourceSpec {
  // Only one parameter: everything after "?uri=" is the URI verbatim, because libvirt
  // URIs contain "+", "?" and "&" themselves (qemu+ssh://root@host/system?keyfile=...).
  const at = rest.indexOf('?uri=');
  const pattern = at < 0 ? rest : rest.slice(0, at);
  const uri = at < 0 ? undefined : rest.slice(at + 5);
  if (pattern === '') fail(`"libvirt:" needs a domain-name pattern, e.g. libvirt:* or ${EXAMPLES.libvirt}`);
  if (at < 0 && /\?[A-Za-z_]+=/.test(rest)) fail(`"libvirt:" takes one parameter, ?uri=..., e.g. ${EXAMPLES.libvirt}`);
  if (pattern.includes('/')) fail(`"libvirt:" pattern ${JSON.stringify(pattern)} must not contain "/": it matches domain names, e.g. libvirt:web-*`);
  if (/[\u0000-\u001f\u007f]/.test(pattern)) fail('"libvirt:" pattern must not contain control characters');
  const problem = globProblem(pattern);
  if (problem) fail(`"libvirt:" pattern ${JSON.stringify(pattern)}: ${problem}, e.g. libvirt:web-[0-9]*`);
  if (uri !== undefined) {
    if (uri.trim() === '') fail(`"libvirt:" ?uri= needs a connection URI, e.g. ${EXAMPLES.libvirt}`);
    if (!/^[A-Za-z][A-Za-z0-9+.-]*:/.test(uri))
      fail(`"libvirt:" ?uri=${uri} is not a libvirt URI; expected e.g. qemu:///system, qemu+ssh://root@host/system or test:///default`);
    return { type: 'libvirt', pattern, uri };
  }
  return { type: 'libvirt', pattern };
}

function parseUrl(spec: string, type: 'postgres' | 'mysql', fail: Fail): URL {
  const example = EXAMPLES[type];
  if (!/^[a-z]+:\/\//i.test(spec)) fail(`"${spec.slice(0, spec.indexOf(':') + 1)}" needs a URL like ${example}`);
  let url: URL;
  try {
    url = new URL(spec);
  } catch {
    return fail(
      `${JSON.stringify(redactLoose(spec))} is not a valid URL; expected e.g. ${example} (percent-encode special characters in the password, e.g. %40 for @)`,
    );
  }
  const db = url.pathname.replace(/^\//, '');
  if (db === '') fail(`${JSON.stringify(redactLoose(spec))} names no database; expected e.g. ${example}`);
  if (db.includes('/')) fail(`${JSON.stringify(redactLoose(spec))}: the database name must be one path segment, e.g. ${example}`);
  try {
    decodeURIComponent(db);
    decodeURIComponent(url.username);
    decodeURIComponent(url.password);
  } catch {
    fail(`${JSON.stringify(redactLoose(spec))} has a malformed %-escape`);
  }
  if (url.hash) fail(`${JSON.stringify(redactLoose(spec))}: a source URL has no #fragment`);
  return url;
}

function parsePostgres(spec: string, fail: Fail): PostgresSourceSpec {
  const url = parseUrl(spec, 'postgres', fail);
  let format: PostgresDumpFormat = 'custom';
  const formats = url.searchParams.getAll('format');
  if (formats.length > 1) fail(`${JSON.stringify(redactLoose(spec))} gives format= more than once`);
  if (formats.length === 1) {
    if (formats[0] !== 'custom' && formats[0] !== 'plain')
      fail(`postgres format=${formats[0]} is not supported; use format=custom (pg_dump -Fc, the default) or format=plain (SQL)`);
    format = formats[0] as PostgresDumpFormat;
  }
  // The stored URL is the text as written minus the format parameter, so that it can be
  // printed back unchanged.
  return { type: 'postgres', url: formats.length ? removeQueryParam(spec, 'format') : spec, format };
}

function parseMysql(spec: string, fail: Fail): MysqlSourceSpec {
  const url = parseUrl(spec, 'mysql', fail);
  for (const key of url.searchParams.keys()) {
    if (key !== 'socket')
      fail(
        `mysql URL parameter "${key}" is not supported; the only parameter is socket=/path/to/mysqld.sock, e.g. mysql://root@localhost/shop?socket=/run/mysqld/mysqld.sock`,
      );
  }
  const socket = url.searchParams.get('socket');
  if (socket !== null && !socket.startsWith('/')) fail(`mysql socket=${socket} must be an absolute path, e.g. socket=/run/mysqld/mysqld.sock`);
  return { type: 'mysql', url: spec };
}

/** Removes every `key=...` pair from the query of `url` (text), keeping the rest as written. */
function removeQueryParam(url: string, key: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const kept = url
    .slice(q + 1)
    .split('&')
    .filter((pair) => pair !== '' && pair.split('=', 1)[0] !== key);
  return kept.length ? `${url.slice(0, q)}?${kept.join('&')}` : url.slice(0, q);
}

/** `scheme://user:secret@host/...` -> `scheme://user:***@host/...`; other text unchanged. */
function redactUrlPassword(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/?#@:]*):[^/?#]*@/i, (_, head: string) => `${head}:***@`);
}

/**
 * A source spec as people may see it (lists, history, run views): the password of a
 * database URL replaced by `***`. Only agents get the spec whole, in the run they execute.
 */
export function redactSourceSpec(text: string): string {
  return redactLoose(text);
}

/** Redacts what looks like a URL password, for error messages about unparsable input. */
function redactLoose(text: string): string {
  return text.replace(/^(\s*[a-z][a-z0-9+.-]*:\/\/[^/?#@:]*):[^@]*@/i, (_, head: string) => `${head}:***@`);
}
