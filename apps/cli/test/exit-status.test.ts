/**
 * apps/cli/src/exit-status.ts: the exit code of an error is one lookup in the error table
 * (@hoard/errors): the environment first, then the error's code, or the code of the
 * server's JSON error body; no code is a bug.
 */
import { ChunkerParameterError } from '@hoard/chunker';
import { RestoreStreamError, ScheduleError, ServerError, ServerUnreachableError } from '@hoard/protocol';
import {
  EnvironmentError,
  IntegrityError,
  ObjectNotFoundError,
  ObjectStoreError,
  PackFormatError,
  RepositoryExistsError,
  RestoreWriteError,
  SnapshotNotFoundError,
  SnapshotProtectedError,
  StoreWriteError,
  WrongPassphraseError,
} from '@hoard/repository';
import { describe, expect, it } from 'vitest';
import { RestoreDamagedError } from '../dist/commands/restore-database.js';
import { UsageError } from '../dist/errors.js';
import { exitStatus } from '../dist/exit-status.js';

const BUG = /this looks like a bug in hoard/;

describe('exitStatus', () => {
  it.each([
    ['a usage error', new UsageError('--jobs 0: give a whole number from 1 to 64'), 2],
    ['a chunker parameter', new ChunkerParameterError('minSize', 3, 'a power of two'), 2],
    ['a schedule', new ScheduleError('"0 1 * * 8": day-of-week must be 0-7', '0 1 * * 8', 'day-of-week'), 2],
    ['no such snapshot', new SnapshotNotFoundError('job vm has no snapshot 3fa2'), 2],
    ['init on a repository', new RepositoryExistsError('/srv/hoard'), 2],
    ['a protected snapshot', new SnapshotProtectedError(['snapshots/vm/1']), 2],
    ['a wrong passphrase', new WrongPassphraseError(), 1],
    ['the object store', new ObjectStoreError('s3://b/p', 'get', 'config', 'HTTP 503'), 1],
    ['a failed pack upload', new StoreWriteError('pack upload failed', new Error('socket hang up')), 1],
    ['a damaged pack', new PackFormatError('packs/ab/cd', 'bad trailer'), 3],
    ['restored bytes that do not match', new IntegrityError('vm/1', 'packs/ab/cd', 0, 'checksum mismatch'), 3],
    ['a missing object the repository needs', new ObjectNotFoundError('fs:/srv/hoard', 'packs/ab/cd'), 3],
    ['damage found restoring into a database', new RestoreDamagedError('snapshot 1 is damaged'), 3],
  ])('%s', (_what, err, code) => {
    expect(exitStatus(err)).toEqual({ code, message: err.message });
  });

  it('the server: the code of its JSON error body', () => {
    const answer = (status: number, body: Record<string, unknown>) => new ServerError(status, String(body.message ?? body.error), body);
    expect(exitStatus(answer(404, { code: 'job_not_found', message: 'no job named vm', status: 404, error: 'no job named vm' }))).toEqual({
      code: 2,
      message: 'server: no job named vm',
    });
    expect(exitStatus(answer(500, { code: 'data_damaged', message: 'pack x is damaged', status: 500 }))).toEqual({
      code: 3,
      message: 'server: pack x is damaged',
    });
    expect(exitStatus(answer(409, { code: 'gc_locked', message: 'gc is running', status: 409 })).code).toBe(1);
    expect(exitStatus(answer(409, { code: 'conflict', message: 'totals differ', status: 409 })).code).toBe(2);
    expect(exitStatus(answer(401, { code: 'unauthenticated', message: 'unknown token', status: 401 })).code).toBe(1);
  });

  it('a server from before the codes: its status', () => {
    const old = (status: number, error: string) => new ServerError(status, error, { error, status });
    expect(exitStatus(old(404, 'no job named vm'))).toEqual({ code: 2, message: 'server: no job named vm' });
    expect(exitStatus(old(400, 'job must be a string')).code).toBe(2);
    expect(exitStatus(old(401, 'unknown token')).code).toBe(1);
    expect(exitStatus(old(403, 'admin only')).code).toBe(1);
    expect(exitStatus(old(410, 'session expired')).code).toBe(1);
    // The message is not read: damage needs the code.
    expect(exitStatus(old(500, 'stored data is damaged: pack x')).code).toBe(1);
    // A body that is not JSON, or a code this build does not know.
    expect(exitStatus(new ServerError(502, 'bad gateway')).code).toBe(1);
    expect(exitStatus(new ServerError(400, 'what', { code: 'something_new' })).code).toBe(2);
  });

  it('no answer from the server', () => {
    expect(exitStatus(new ServerUnreachableError('connect ECONNREFUSED 127.0.0.1:8420'))).toEqual({ code: 1, message: 'connect ECONNREFUSED 127.0.0.1:8420' });
  });

  it('a restore stream broken off by the server: the frame code, also as an older server sends it', () => {
    expect(exitStatus(new RestoreStreamError('blob failed its checksum', 'data_damaged')).code).toBe(3);
    expect(exitStatus(new RestoreStreamError('blob failed its checksum', 'damaged')).code).toBe(3);
    expect(exitStatus(new RestoreStreamError('get failed', 'unavailable')).code).toBe(1);
  });

  it('what the environment refused: one line, exit 1, whatever wraps it', () => {
    const full = new EnvironmentError('fs:/srv/hoard', 'put', 'packs/ab/cd', 'ENOSPC', { path: '/srv/hoard' });
    const status = exitStatus(new StoreWriteError('pack upload failed', full));
    expect(status).toEqual({ code: 1, message: full.message });
    expect(status.message).toMatch(/no space left/);
    const target = exitStatus(new RestoreWriteError('cannot write the restored data: ENOSPC: no space left on device', 'ENOSPC'));
    expect(target.code).toBe(1);
    expect(target.message).toMatch(/ENOSPC.*free space/);
  });

  it('an errno of our own I/O or an abort: exit 1, no stack trace', () => {
    const io = exitStatus(new RestoreWriteError('cannot write the restored data: EIO', 'EIO'));
    expect(io).toEqual({ code: 1, message: 'cannot write the restored data: EIO' });
    const abort = Object.assign(new Error('the operation was aborted'), { name: 'AbortError' });
    expect(exitStatus(abort)).toEqual({ code: 1, message: 'the operation was aborted' });
  });

  it('an error without a code, or with internal, is a bug: the stack and a plea', () => {
    const plain = exitStatus(new TypeError("Cannot read properties of undefined (reading 'x')"));
    expect(plain.code).toBe(1);
    expect(plain.message).toMatch(/TypeError: Cannot read properties/);
    expect(plain.message).toMatch(BUG);
    expect(plain.message).toMatch(/\n\s+at /);
    expect(exitStatus(new RestoreStreamError('internal error: x is undefined', 'internal')).message).toMatch(BUG);
    expect(exitStatus('a thrown string')).toEqual({
      code: 1,
      message: `a thrown string\n(this looks like a bug in hoard; please report it with the command you ran)`,
    });
  });
});
