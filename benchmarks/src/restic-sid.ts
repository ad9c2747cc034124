/**
 * restic for `pnpm bench backup`: Debian unstable's `restic` package, fetched with apt
 * without touching the machine's apt state, or a binary given with `--restic PATH`.
 *
 * Debian bookworm ships restic 0.14; the issue compares against 0.19. The benchmark:
 *
 * 1. reads the machine's own apt sources (`/etc/apt/sources.list` and
 *    `/etc/apt/sources.list.d/*.list` / `*.sources`) and picks the Debian mirror of the
 *    main archive (not the security archive) with its `Signed-By` keyring;
 * 2. writes a temporary sources file for that mirror with suite `sid`, component main,
 *    and runs `apt-get update` and `apt-get download restic` with options that point
 *    apt's source list, list directory and cache into a temporary directory
 *    (`Dir::Etc::SourceList`, `Dir::Etc::SourceParts=/dev/null`, `Dir::State::Lists`,
 *    `Dir::Cache`), so `/var/lib/apt/lists` and `/var/cache/apt` stay as they were;
 * 3. unpacks the .deb with `dpkg-deb -x` into `<cache>/hoard-bench/restic-<version>/`
 *    (`$XDG_CACHE_HOME` or `~/.cache`) and runs `usr/bin/restic` from there. Later runs
 *    reuse the newest unpacked version without going to the network.
 *
 * No host name is written anywhere: the mirror is whatever the machine's sources say.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { findOnPath } from './peers.js';

/** One apt source entry, from either format. */
export interface AptSource {
  types: string[];
  uris: string[];
  suites: string[];
  components: string[];
  /** Signed-By: a keyring path or an embedded key block (deb822 only), as written. */
  signedBy?: string;
  trusted?: boolean;
}

/**
 * Parses a deb822 `.sources` file: stanzas separated by blank lines, `Field: value`,
 * continuation lines starting with a space or tab, `#` comments. Stanzas with
 * `Enabled: no` are dropped.
 */
export function parseDeb822Sources(text: string): AptSource[] {
  const out: AptSource[] = [];
  const stanzas: Array<Map<string, string>> = [];
  let cur: Map<string, string> | null = null;
  let last: string | null = null;
  for (const raw of text.split(/\r?\n/)) {
    if (raw.startsWith('#')) continue;
    if (raw.trim() === '') {
      cur = null;
      last = null;
      continue;
    }
    if (/^[ \t]/.test(raw)) {
      // Continuation of the previous field (an embedded key's lines; " ." is an empty line).
      if (cur && last) cur.set(last, `${cur.get(last)}\n${raw.trim()}`);
      continue;
    }
    const colon = raw.indexOf(':');
    if (colon <= 0) continue;
    if (!cur) {
      cur = new Map();
      stanzas.push(cur);
    }
    last = raw.slice(0, colon).trim().toLowerCase();
    cur.set(last, raw.slice(colon + 1).trim());
  }
  const words = (v: string | undefined) => (v ?? '').split(/\s+/).filter(Boolean);
  for (const s of stanzas) {
    if (/^(no|false|0)$/i.test(s.get('enabled') ?? '')) continue;
    const entry: AptSource = {
      types: words(s.get('types')),
      uris: words(s.get('uris')),
      suites: words(s.get('suites')),
      components: words(s.get('components')),
    };
    const signedBy = s.get('signed-by');
    if (signedBy) entry.signedBy = signedBy.replace(/^\n+/, '');
    if (/^(yes|true|1)$/i.test(s.get('trusted') ?? '')) entry.trusted = true;
    out.push(entry);
  }
  return out;
}

/** Parses one-line sources (`deb [opt=v ...] URI SUITE COMPONENT...`), one entry per line. */
export function parseOneLineSources(text: string): AptSource[] {
  const out: AptSource[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') continue;
    const m = /^(deb|deb-src)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)(.*)$/.exec(line);
    if (!m) continue;
    const entry: AptSource = { types: [m[1]], uris: [m[3]], suites: [m[4]], components: m[5].split(/\s+/).filter(Boolean) };
    for (const opt of (m[2] ?? '').split(/\s+/).filter(Boolean)) {
      const eq = opt.indexOf('=');
      if (eq <= 0) continue;
      const key = opt.slice(0, eq).toLowerCase();
      const value = opt.slice(eq + 1);
      if (key === 'signed-by') entry.signedBy = value;
      else if (key === 'trusted' && /^(yes|true|1)$/i.test(value)) entry.trusted = true;
    }
    out.push(entry);
  }
  return out;
}

/**
 * The machine's Debian mirror of the main archive: the first `deb` entry with component
 * main and a release suite (a bare codename such as `bookworm`, or stable/testing/sid),
 * not the security archive or an `-updates`/`-backports` suite only. null if none.
 */
export function pickDebianMirror(sources: AptSource[]): AptSource | null {
  const release = (suite: string) => /^[a-z]+$/.test(suite);
  for (const s of sources) {
    if (!s.types.includes('deb') || !s.components.includes('main')) continue;
    if (!s.suites.some(release)) continue;
    const uri = s.uris.find((u) => !/security/i.test(u));
    if (uri === undefined) continue;
    return { ...s, uris: [uri] };
  }
  return null;
}

/** A deb822 sources file for `mirror`'s URI with `suite` (default sid), component main, keeping its keyring. */
export function sidSourcesFile(mirror: AptSource, suite = 'sid'): string {
  const lines = ['Types: deb', `URIs: ${mirror.uris[0]}`, `Suites: ${suite}`, 'Components: main'];
  if (mirror.signedBy) {
    const [first, ...rest] = mirror.signedBy.split('\n');
    // An embedded key keeps its lines as continuation lines; a keyring path is one line.
    lines.push(rest.length === 0 ? `Signed-By: ${first}` : ['Signed-By:', ...[first, ...rest].map((l) => ` ${l}`)].join('\n'));
  }
  if (mirror.trusted) lines.push('Trusted: yes');
  return `${lines.join('\n')}\n`;
}

/** The version in `restic version` output ("restic 0.19.1 compiled with go1.26 on linux/amd64"), or null. */
export function parseResticVersion(output: string): string | null {
  const m = /\brestic\s+v?(\d+\.\d+(?:\.\d+)?(?:[-~+][0-9A-Za-z.~+-]*)?)/.exec(output);
  return m ? m[1] : null;
}

/** The upstream part of a Debian version: "1:0.19.1-1+b2" -> "0.19.1". */
export function upstreamVersion(debianVersion: string): string {
  return debianVersion.replace(/^\d+:/, '').replace(/-[^-]*$/, '');
}

/** Compares dotted versions numerically piece by piece (enough for restic's: 0.14.0 < 0.19.1 < 0.19.1-2). */
export function compareVersions(a: string, b: string): number {
  const pa = a
    .split(/[^0-9]+/)
    .filter(Boolean)
    .map(Number);
  const pb = b
    .split(/[^0-9]+/)
    .filter(Boolean)
    .map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? -1) - (pb[i] ?? -1);
    if (d !== 0) return d;
  }
  return 0;
}

export interface ResticBinary {
  path: string;
  /** From `restic version`, e.g. "0.19.1". */
  version: string;
  /** Its first line. */
  versionLine: string;
  /** Where it came from: "--restic PATH", "debian sid restic_0.19.1-1 (cached)" ... */
  source: string;
}

function versionOf(bin: string): { version: string; line: string } | null {
  const r = spawnSync(bin, ['version'], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  const line = `${r.stdout ?? ''}`.trim().split('\n')[0] ?? '';
  const version = parseResticVersion(line);
  return version ? { version, line } : null;
}

export function benchCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'hoard-bench');
}

/** The machine's apt sources, both formats, in apt's order (sources.list, then the parts by name). */
export function readMachineSources(etc = '/etc/apt'): AptSource[] {
  const out: AptSource[] = [];
  const main = join(etc, 'sources.list');
  if (existsSync(main)) out.push(...parseOneLineSources(readFileSync(main, 'utf8')));
  const parts = join(etc, 'sources.list.d');
  const names = existsSync(parts) ? readdirSync(parts).sort() : [];
  for (const name of names) {
    const text = () => readFileSync(join(parts, name), 'utf8');
    if (name.endsWith('.list')) out.push(...parseOneLineSources(text()));
    else if (name.endsWith('.sources')) out.push(...parseDeb822Sources(text()));
  }
  return out;
}

function runOrThrow(cmd: string, args: string[], opts: { cwd?: string; log: (l: string) => void }): string {
  opts.log(`  ${cmd} ${args.filter((a) => !a.startsWith('Dir::') && a !== '-o').join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: opts.cwd, encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (r.status !== 0) {
    const tail = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-10).join('\n');
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal ?? r.error?.message}):\n${tail}`);
  }
  return r.stdout ?? '';
}

/** The newest restic unpacked under the cache directory that runs, or null. */
function cachedRestic(cache: string): ResticBinary | null {
  if (!existsSync(cache)) return null;
  const dirs = readdirSync(cache)
    .filter((n) => n.startsWith('restic-') && existsSync(join(cache, n, 'usr/bin/restic')))
    .sort((a, b) => compareVersions(b.slice(7), a.slice(7)));
  for (const d of dirs) {
    const path = join(cache, d, 'usr/bin/restic');
    const v = versionOf(path);
    if (v) return { path, version: v.version, versionLine: v.line, source: `debian sid restic_${d.slice(7)} (unpacked in ${cache})` };
  }
  return null;
}

/** apt options that keep every file apt writes under `tmp` and read only our source list. */
export function isolatedAptOptions(tmp: string, isRoot: boolean): string[] {
  const o = (kv: string) => ['-o', kv];
  return [
    ...o(`Dir::Etc::SourceList=${join(tmp, 'sid.sources')}`),
    ...o('Dir::Etc::SourceParts=/dev/null'),
    ...o(`Dir::State::Lists=${join(tmp, 'lists')}`),
    ...o(`Dir::Cache=${join(tmp, 'cache')}`),
    // The machine's pins must not hide sid's candidate.
    ...o('Dir::Etc::Preferences=/dev/null'),
    ...o('Dir::Etc::PreferencesParts=/dev/null'),
    ...o('Acquire::Languages=none'),
    // As root apt downloads as _apt, which cannot enter a private temporary directory.
    ...(isRoot ? o('APT::Sandbox::User=root') : []),
  ];
}

/** Downloads Debian unstable's restic with apt (isolated, see above) and unpacks it under `cache`. */
async function downloadSidRestic(cache: string, log: (l: string) => void): Promise<ResticBinary> {
  for (const bin of ['apt-get', 'dpkg-deb']) {
    if (findOnPath(bin) === null) throw new Error(`${bin} is not available to fetch Debian unstable's restic; give a restic binary with --restic PATH`);
  }
  const mirror = pickDebianMirror(readMachineSources());
  if (!mirror)
    throw new Error('no Debian mirror with component main in the apt sources (/etc/apt/sources.list, sources.list.d); give a restic binary with --restic PATH');
  await mkdir(cache, { recursive: true });
  const tmp = await mkdtemp(join(cache, 'apt-'));
  try {
    await mkdir(join(tmp, 'lists', 'partial'), { recursive: true });
    await mkdir(join(tmp, 'cache', 'archives', 'partial'), { recursive: true });
    await mkdir(join(tmp, 'deb'));
    await writeFile(join(tmp, 'sid.sources'), sidSourcesFile(mirror));
    const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
    const opts = isolatedAptOptions(tmp, isRoot);
    log("fetching Debian unstable's restic (the machine's mirror, suite sid; apt state kept in a temporary directory) ...");
    runOrThrow('apt-get', [...opts, '-q', 'update'], { log });
    runOrThrow('apt-get', [...opts, '-q', 'download', 'restic'], { cwd: join(tmp, 'deb'), log });
    const deb = (await readdir(join(tmp, 'deb'))).find((n) => n.endsWith('.deb'));
    if (!deb) throw new Error('apt-get download restic left no .deb');
    const debVersion = runOrThrow('dpkg-deb', ['-f', join(tmp, 'deb', deb), 'Version'], { log }).trim();
    const dest = join(cache, `restic-${debVersion}`);
    const unpack = join(tmp, 'unpacked');
    runOrThrow('dpkg-deb', ['-x', join(tmp, 'deb', deb), unpack], { log });
    await rm(dest, { recursive: true, force: true });
    await rename(unpack, dest);
    const path = join(dest, 'usr/bin/restic');
    const v = versionOf(path);
    if (!v) throw new Error(`${path} (from ${deb}) does not run`);
    log(`restic ${v.version} from ${deb}, unpacked in ${dest}`);
    return { path, version: v.version, versionLine: v.line, source: `debian sid ${deb.replace(/\.deb$/, '')} (downloaded, unpacked in ${cache})` };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * The restic binary the benchmark runs: `explicit` (--restic PATH) if given, else the
 * newest Debian unstable restic in the cache, else one fetched now.
 */
export async function resolveRestic(explicit: string | undefined, log: (l: string) => void, cache = benchCacheDir()): Promise<ResticBinary> {
  if (explicit !== undefined) {
    const path = findOnPath(explicit);
    if (path === null) {
      throw new Error(
        `--restic ${explicit}: not an executable file${explicit === '/usr/bin/restic' || explicit === 'restic' ? " (Debian's own restic: apt-get install restic)" : ''}`,
      );
    }
    const v = versionOf(path);
    if (!v) throw new Error(`--restic ${explicit}: \`${path} version\` did not print a restic version`);
    return { path, version: v.version, versionLine: v.line, source: `--restic ${explicit}` };
  }
  return cachedRestic(cache) ?? (await downloadSidRestic(cache, log));
}
