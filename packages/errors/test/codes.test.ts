/**
 * The error table against the code that uses it and the page that documents it:
 * - errors of every package carry a code of the table (instances, and a scan of every
 *   `code` written in packages/*\/src and apps/*\/src, where a typo would not be a type
 *   error in the packages that write plain literals);
 * - every error class there has a code, its own or inherited;
 * - docs/errors.md lists exactly the table's codes, with their status, exit code and meaning.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, EXIT_CODES, errorCodeOf, exitCodeOf, httpStatusOf, HoardError, isErrorCode } from '../dist/index.js';
import * as agentSources from '../../../apps/agent/dist/sources/errors.js';
import * as catalog from '../../catalog/dist/index.js';
import * as chunker from '../../chunker/dist/index.js';
import * as protocol from '../../protocol/dist/index.js';
import * as repository from '../../repository/dist/index.js';
import * as retention from '../../retention/dist/index.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');

describe('the table', () => {
  it('codes are snake_case, statuses are 4xx/5xx, and the lookups read the table', () => {
    for (const [code, info] of Object.entries(ERROR_CODES)) {
      expect(code).toMatch(/^[a-z][a-z0-9]*(_[a-z0-9]+)*$/);
      expect(info.status).toBeGreaterThanOrEqual(400);
      expect(info.status).toBeLessThan(600);
      expect(info.meaning.length).toBeGreaterThan(10);
      if (!isErrorCode(code)) throw new Error(`${code} is not an error code`);
      expect(httpStatusOf(code)).toBe(info.status);
      expect(exitCodeOf(code)).toBe(EXIT_CODES[info.exit]);
    }
  });

  it('errorCodeOf: a code of the table, never an errno or anything else', () => {
    expect(errorCodeOf(new HoardError('job_not_found', 'no job x'))).toBe('job_not_found');
    expect(errorCodeOf(Object.assign(new Error('disk full'), { code: 'ENOSPC' }))).toBeUndefined();
    expect(errorCodeOf({ code: 'toString' })).toBeUndefined();
    expect(errorCodeOf(new Error('plain'))).toBeUndefined();
    expect(errorCodeOf(undefined)).toBeUndefined();
    expect(errorCodeOf(null)).toBeUndefined();
    expect(errorCodeOf('data_damaged')).toBeUndefined();
  });
});

describe('errors of every package carry a code of the table', () => {
  const cases: [Error, string][] = [
    [new chunker.ChunkerParameterError('minSize', 3, 'a power of two'), 'invalid_chunker'],
    [new chunker.IndexFormatError('index.bin', 'truncated'), 'data_damaged'],
    [new retention.RetentionRuleError('keep-daily must be a whole number'), 'invalid_retention'],
    [new catalog.CatalogLockedError('/var/lib/hoard'), 'catalog_unavailable'],
    [new catalog.CatalogSchemaError('/var/lib/hoard', 3, 1), 'catalog_unavailable'],
    [new catalog.CatalogOpenError('/var/lib/hoard', 'not a catalog'), 'catalog_unavailable'],
    [new catalog.CatalogClosedError('/var/lib/hoard'), 'catalog_unavailable'],
    [new catalog.CatalogValidationError('hostname', 'hostname must be a string'), 'invalid_request'],
    [new catalog.InvalidNameError('agent', 'Web 1', 'lower-case letters'), 'invalid_name'],
    [new catalog.AgentExistsError('web1'), 'agent_exists'],
    [new catalog.AgentNotFoundError('web1'), 'agent_not_found'],
    [new catalog.AgentRevokedError('web1', '2026-01-01T00:00:00.000Z'), 'agent_revoked'],
    [new catalog.TokenInUseError('agent web1'), 'conflict'],
    [new catalog.JobNotFoundError('vm'), 'job_not_found'],
    [new repository.RepositoryError('pack size must be from 4 MiB to 128 MiB'), 'repository_error'],
    [new repository.RepositoryNotFoundError('/srv/hoard'), 'repository_not_found'],
    [new repository.RepositoryExistsError('/srv/hoard'), 'repository_exists'],
    [new repository.PassphraseRequiredError('/srv/hoard'), 'passphrase_required'],
    [new repository.SnapshotNotFoundError('no snapshot 3fa2'), 'snapshot_not_found'],
    [new repository.SnapshotProtectedError(['snapshots/vm/1']), 'snapshot_protected'],
    [new repository.StoreScopeError('store x is not for job y'), 'invalid_storage'],
    [new repository.UnknownStoreError('no store x'), 'invalid_storage'],
    [new repository.InvalidStoreNameError('bad store name'), 'invalid_storage'],
    [new repository.S3ConfigError('bad bucket'), 'invalid_storage'],
    [new repository.InvalidJobNameError('../x'), 'invalid_name'],
    [new repository.SourceError('the source ended early'), 'source_failed'],
    [new repository.GcError('gc/condemned is not valid JSON'), 'repository_error'],
    [new repository.GcDamagedError('segment x is damaged'), 'data_damaged'],
    [new repository.GcLockedError('held by gc on host a'), 'gc_locked'],
    [new repository.GcConflictError('pack x was condemned'), 'gc_conflict'],
    [new repository.IntegrityError('vm/1', 'packs/ab/cd', 0, 'checksum mismatch'), 'data_damaged'],
    [new repository.PackFormatError('packs/ab/cd', 'bad trailer'), 'data_damaged'],
    [new repository.ManifestFormatError('snapshots/vm/1', 'bad magic'), 'data_damaged'],
    [new repository.ChunkListFormatError('chunklists/ab/cd', 'short'), 'data_damaged'],
    [new repository.IndexSegmentFormatError('index/ab/cd', 'short'), 'data_damaged'],
    [new repository.RecordFormatError('config', 'not JSON'), 'data_damaged'],
    [new repository.ArchiveFormatError('vm/1', 'bad entry'), 'data_damaged'],
    [new repository.MetadataDamagedError('store record', 'stores/x', 'missing', 'store x is missing'), 'data_damaged'],
    [new repository.BlobCorruptError('checksum', 'xxh64 mismatch'), 'data_damaged'],
    [new repository.BlobCodecConfigError('data key must be 32 bytes'), 'internal'],
    [new repository.ArchiveEntryNotFoundError('etc/x is not in snapshot 1'), 'archive_entry_not_found'],
    [new repository.ArchiveTargetExistsError('/restore exists'), 'target_exists'],
    [new repository.WrongPassphraseError(), 'wrong_passphrase'],
    [new repository.KeyFileFormatError('unsupported key file'), 'key_file_invalid'],
    [new repository.ObjectStoreError('fs:/srv', 'get', 'config', 'EIO'), 'storage_unavailable'],
    [new repository.ObjectNotFoundError('fs:/srv', 'packs/ab/cd'), 'data_damaged'],
    [new repository.RangeOutOfBoundsError('fs:/srv', 'packs/ab/cd', 10, 10, 12), 'data_damaged'],
    [new repository.InvalidKeyError('../x', "'..' path segment"), 'invalid_request'],
    [new repository.StoreWriteError('pack upload failed', new Error('EIO')), 'work_failed'],
    [new repository.DecodeWorkerError('the decode worker exited'), 'work_failed'],
    [new protocol.RequestError('invalid_request', 'job must be a string'), 'invalid_request'],
    [new protocol.PolicyError([{ path: 'schedule', message: 'bad' }]), 'invalid_policy'],
    [new protocol.ScheduleError('day-of-week must be 0-7', '0 1 * * 8', 'day-of-week'), 'invalid_schedule'],
    [new protocol.SourceSpecError('file: needs an absolute path', 'file:x'), 'invalid_source'],
    [new protocol.WireFormatError('a batch frame of 3 bytes'), 'invalid_request'],
    [new protocol.RestoreStreamError('blob failed its checksum', 'data_damaged'), 'data_damaged'],
    [new agentSources.SourceError('web', 'web: the stream can be read only once'), 'source_failed'],
    [new agentSources.SourceFailedError('db', 'pg_dump exited with status 1', { program: 'pg_dump', exitCode: 1 }), 'source_failed'],
    [new agentSources.SourceNotFoundError('web', 'no such file'), 'source_not_found'],
    [new agentSources.SourceUnsupportedError('web', 'a directory'), 'source_unsupported'],
    [new agentSources.SourceToolMissingError('web', 'qemu-nbd', 'qemu-utils'), 'tool_missing'],
    [new agentSources.SourceSizeMismatchError('web', 10, 5, true), 'source_changed'],
    [new agentSources.SourceClosedError('web', 'closed'), 'source_failed'],
  ];
  it.each(cases.map(([err, code]) => [err.name, err, code] as const))('%s', (_name, err, code) => {
    expect(errorCodeOf(err)).toBe(code);
  });

  it('a restore stream error frame: codes of the table, and the codes of older servers', () => {
    expect(errorCodeOf(new protocol.RestoreStreamError('x', 'damaged'))).toBe('data_damaged');
    expect(errorCodeOf(new protocol.RestoreStreamError('x', 'unavailable'))).toBe('storage_unavailable');
    expect(errorCodeOf(new protocol.RestoreStreamError('x', 'storage_refused'))).toBe('storage_refused');
    expect(errorCodeOf(new protocol.RestoreStreamError('x', 'something new'))).toBe('internal');
    expect(errorCodeOf(new protocol.RestoreStreamError('x', 'constructor'))).toBe('internal');
  });

  it("EnvironmentError keeps its errno in code: not one of the table's (callers answer storage_refused)", () => {
    const err = new repository.EnvironmentError('fs:/srv', 'put', 'packs/ab/cd', 'ENOSPC', { path: '/srv' });
    expect(err.code).toBe('ENOSPC');
    expect(errorCodeOf(err)).toBeUndefined();
    expect(repository.findEnvironmentError(new Error('wrapped', { cause: err }))).toBe(err);
  });
});

/** Every .ts file under packages/*\/src and apps/*\/src. */
function sourceFiles(): string[] {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) files.push(path);
    }
  };
  for (const top of ['packages', 'apps']) {
    for (const pkg of readdirSync(join(ROOT, top), { withFileTypes: true })) {
      if (!pkg.isDirectory()) continue;
      const src = join(ROOT, top, pkg.name, 'src');
      try {
        walk(src);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
  }
  return files.sort();
}

interface ClassInfo {
  file: string;
  name: string;
  parent: string;
  /** The class declares a `code` property (a field or a constructor parameter property). */
  ownCode: boolean;
}

/** `class X extends Y {...}` with its body (braces matched; strings and comments are not special-cased, which the error classes do not need). */
function classesOf(file: string, text: string): ClassInfo[] {
  const out: ClassInfo[] = [];
  for (const m of text.matchAll(/\bclass (\w+) extends (\w+)[^{]*\{/g)) {
    let depth = 1;
    let i = m.index + m[0].length;
    while (depth > 0 && i < text.length) {
      if (text[i] === '{') depth++;
      else if (text[i] === '}') depth--;
      i++;
    }
    const body = text.slice(m.index + m[0].length, i - 1);
    out.push({ file, name: m[1]!, parent: m[2]!, ownCode: /\breadonly code\b/.test(body) });
  }
  return out;
}

describe('the sources', () => {
  const files = sourceFiles().map((path) => ({ path: relative(ROOT, path), text: readFileSync(path, 'utf8') }));

  it('finds the sources', () => {
    expect(files.length).toBeGreaterThan(100);
    expect(files.map((f) => f.path)).toContain('packages/chunker/src/errors.ts');
  });

  it('every code literal given to a `code` property is in the table', () => {
    const found: { file: string; code: string }[] = [];
    for (const { path, text } of files) {
      for (const m of text.matchAll(/\breadonly code\b[^=;\n]*=\s*'([^']*)'/g)) found.push({ file: path, code: m[1]! });
    }
    // The chunker, the retention package and the classes others keep minimal write plain literals.
    expect(found.map((f) => f.code)).toEqual(expect.arrayContaining(['invalid_chunker', 'invalid_retention', 'data_damaged']));
    expect(found.filter((f) => !isErrorCode(f.code))).toEqual([]);
  });

  it('every error class has a code, its own or inherited', () => {
    const classes = files.flatMap(({ path, text }) => classesOf(path, text));
    // Names can repeat across packages (SourceError); a parent resolves to any class of its name.
    const byName = new Map<string, ClassInfo[]>();
    for (const c of classes) byName.set(c.name, [...(byName.get(c.name) ?? []), c]);
    const hasCode = (c: ClassInfo, depth = 0): boolean => c.ownCode || (depth < 10 && (byName.get(c.parent) ?? []).some((p) => hasCode(p, depth + 1)));
    const errorClasses = classes.filter((c) => c.name.endsWith('Error') || c.parent.endsWith('Error'));
    expect(errorClasses.length).toBeGreaterThan(70);
    // ServerError: the server's answer, whose code is its body's (apps/cli/src/exit-status.ts
    // reads it). ServerUnreachableError: packages/protocol/src/client.ts is being rewritten;
    // exit-status.ts maps it to server_unreachable until it carries that code itself.
    const exempt = new Set(['ServerError', 'ServerUnreachableError']);
    const missing = errorClasses.filter((c) => !exempt.has(c.name) && !hasCode(c)).map((c) => `${c.file}: ${c.name}`);
    expect(missing).toEqual([]);
  });
});

describe('docs/errors.md', () => {
  const doc = readFileSync(join(ROOT, 'docs/errors.md'), 'utf8');
  const rows = [...doc.matchAll(/^\| `([a-z0-9_]+)` \| (\d{3}) \| (\d) \| ([^|]+) \|/gm)].map((m) => ({
    code: m[1]!,
    status: Number(m[2]),
    exit: Number(m[3]),
    meaning: m[4]!.trim(),
  }));

  it('lists every code of the table once, and nothing else', () => {
    expect(rows.map((r) => r.code).sort()).toEqual(Object.keys(ERROR_CODES).sort());
  });

  it("gives each code the table's status, exit code and meaning", () => {
    for (const row of rows) {
      if (!isErrorCode(row.code)) throw new Error(`${row.code} is not in the table`);
      const info = ERROR_CODES[row.code];
      expect({ code: row.code, status: row.status, exit: row.exit, meaning: row.meaning }).toEqual({
        code: row.code,
        status: info.status,
        exit: EXIT_CODES[info.exit],
        meaning: info.meaning,
      });
    }
  });
});
