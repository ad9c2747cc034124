/**
 * Errors of the agent's sources. Each names the source target and says what a user can do.
 */

import type { ErrorCode } from '@hoard/errors';

/** Base class: every error a source raises on purpose. */
export class SourceError extends Error {
  override name = 'SourceError';
  readonly code: ErrorCode = 'source_failed';
  /** The target's name (see SourceTarget.name), or the spec when no target exists yet. */
  readonly target: string;
  constructor(target: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.target = target;
  }
}

/** The producer of a stream (pg_dump, mysqldump, a command, qemu-nbd, a read) did not finish successfully. */
export class SourceFailedError extends SourceError {
  override name = 'SourceFailedError';
  override readonly code: ErrorCode = 'source_failed';
  /** The program that failed, e.g. `pg_dump` or `/bin/bash -o pipefail -c`. */
  readonly program: string;
  /** Exit status, when the process exited. */
  readonly exitCode: number | null;
  /** The signal that ended the process, when one did. */
  readonly signal: NodeJS.Signals | null;
  /** The last ~2 KiB of the process's standard error (empty when it wrote none). */
  readonly stderrTail: string;
  constructor(
    target: string,
    message: string,
    details: { program: string; exitCode?: number | null; signal?: NodeJS.Signals | null; stderrTail?: string; cause?: unknown },
  ) {
    super(target, message, { cause: details.cause });
    this.program = details.program;
    this.exitCode = details.exitCode ?? null;
    this.signal = details.signal ?? null;
    this.stderrTail = details.stderrTail ?? '';
  }
}

/** The thing a spec names does not exist (a path, a libvirt domain, a disk image). */
export class SourceNotFoundError extends SourceError {
  override name = 'SourceNotFoundError';
  override readonly code: ErrorCode = 'source_not_found';
}

/** The thing exists but cannot be read as this kind of source (a directory given to file:, a socket, ...). */
export class SourceUnsupportedError extends SourceError {
  override name = 'SourceUnsupportedError';
  override readonly code: ErrorCode = 'source_unsupported';
}

/** A program the source needs (qemu-nbd, pg_dump, virsh, ...) is not installed. */
export class SourceToolMissingError extends SourceError {
  override name = 'SourceToolMissingError';
  override readonly code: ErrorCode = 'tool_missing';
  readonly tool: string;
  constructor(target: string, tool: string, packageHint: string) {
    super(target, `${target}: needs ${tool}, which is not installed or not on PATH (Debian/Ubuntu: apt-get install ${packageHint})`);
    this.tool = tool;
  }
}

/** The stream delivered fewer or more bytes than the source said it would (a truncated or growing file). */
export class SourceSizeMismatchError extends SourceError {
  override name = 'SourceSizeMismatchError';
  override readonly code: ErrorCode = 'source_changed';
  readonly expectedBytes: number;
  readonly actualBytes: number;
  constructor(target: string, expectedBytes: number, actualBytes: number, ended: boolean) {
    super(
      target,
      ended
        ? `${target}: ended after ${actualBytes} bytes, but its size was ${expectedBytes} bytes when it was opened (was it truncated or replaced during the backup?)`
        : `${target}: delivered more than the ${expectedBytes} bytes it had when it was opened (is something still writing to it? stop the writer or back up a snapshot)`,
    );
    this.expectedBytes = expectedBytes;
    this.actualBytes = actualBytes;
  }
}

/** The source was closed (close() or an abort signal) before its stream ended. */
export class SourceClosedError extends SourceError {
  override name = 'SourceClosedError';
  override readonly code: ErrorCode = 'source_failed';
}
