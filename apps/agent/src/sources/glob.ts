/**
 * A small glob matcher for vm: specs and libvirt: domain patterns (Node 20 has no stable
 * fs.glob). `*` matches any run of characters and `?` one character within one path
 * segment, `[abc]`, `[a-z]` and `[!a-z]` (or `[^a-z]`) one character of a class;
 * wildcards may appear in any segment (`/srv/vms/web-?/disk[0-9].qcow2`). No `**`, no braces,
 * no backslash escapes: write `[*]` for a literal `*`. As in the shell, a wildcard does
 * not match a leading `.` unless the pattern segment starts with `.` too.
 */
import { readdir, stat } from 'node:fs/promises';
import type { Dirent } from 'node:fs';
import { hasGlobMagic } from '@hoard/protocol/agent';

/** A RegExp matching one name (a path segment or a domain name) against `pattern`. */
export function globToRegExp(pattern: string): RegExp {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else if (c === '[') {
      let j = i + 1;
      let negate = false;
      if (pattern[j] === '!' || pattern[j] === '^') {
        negate = true;
        j++;
      }
      let body = '';
      let first = true;
      while (j < pattern.length && (pattern[j] !== ']' || first)) {
        const k = pattern[j];
        body += k === '\\' || k === '^' || k === '[' || k === ']' ? `\\${k}` : k;
        first = false;
        j++;
      }
      if (j >= pattern.length) {
        out += '\\['; // unclosed: a literal [
        continue;
      }
      out += `[${negate ? '^/' : ''}${body}]`;
      i = j;
    } else out += c.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
  }
  return new RegExp(`^${out}$`, 'su');
}

/** Whether `name` matches a glob `pattern` (one segment), with the leading-dot rule. */
export function globMatch(pattern: string, name: string): boolean {
  if (name.startsWith('.') && !pattern.startsWith('.')) return false;
  return globToRegExp(pattern).test(name);
}

/**
 * Expands an absolute glob to the existing paths it matches, sorted. Literal segments
 * are taken as written (a literal last segment is returned whether or not it exists, so
 * the caller can say it is missing); a wildcard segment lists its directory. Directories
 * that do not exist match nothing; unreadable ones throw (EACCES), so that nothing is
 * skipped silently.
 */
export async function expandGlob(pattern: string): Promise<string[]> {
  const segments = pattern.split('/').filter((s) => s !== '');
  let bases = ['/'];
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i];
    const last = i === segments.length - 1;
    const next: string[] = [];
    for (const base of bases) {
      if (!hasGlobMagic(segment)) {
        next.push(join(base, segment));
        continue;
      }
      let entries: Dirent[];
      try {
        entries = await readdir(base, { withFileTypes: true });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') continue;
        throw err;
      }
      const re = globToRegExp(segment);
      for (const entry of entries) {
        if (entry.name.startsWith('.') && !segment.startsWith('.')) continue;
        if (!re.test(entry.name)) continue;
        const path = join(base, entry.name);
        if (!last && !(entry.isDirectory() || (entry.isSymbolicLink() && (await isDirectory(path))))) continue;
        next.push(path);
      }
    }
    bases = next;
  }
  return [...new Set(bases)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function join(base: string, name: string): string {
  return base.endsWith('/') ? base + name : `${base}/${name}`;
}

async function isDirectory(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
}
