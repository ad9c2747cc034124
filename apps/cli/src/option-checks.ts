/**
 * Checks of option values that need neither the repository nor the server, made before
 * a command starts (exit 2, nothing done).
 */
import { UsageError } from './errors.js';

export const MIN_SNAPSHOT_PREFIX = 4;

/**
 * Snapshot ids as typed (`--snapshot`, `--protect`, `--unprotect`): the 16 hex digits
 * `hoard snapshots` prints, a unique prefix of 4 or more of them, or the whole
 * `<time>-<hex>` name. Anything shorter would match too much to be an id.
 */
export function checkSnapshotId(flag: string, text: string): void {
  if (text.length < MIN_SNAPSHOT_PREFIX) {
    throw new UsageError(
      `${flag} ${JSON.stringify(text)}: a snapshot id prefix needs ${MIN_SNAPSHOT_PREFIX} or more characters (ids are 16 hex digits; \`hoard snapshots --job JOB\` lists them)`,
    );
  }
}

/** `--to -` writes a snapshot's bytes to stdout: never onto a terminal, where they are noise that can upset it. */
export function checkStdoutTarget(to: string | undefined, stdout: { isTTY?: boolean } = process.stdout): void {
  if (to === '-' && stdout.isTTY === true) {
    throw new UsageError(
      "--to - would write the snapshot's binary data to this terminal: give a file (--to FILE), or pipe it into a program (hoard restore ... --to - | pg_restore -d DB)",
    );
  }
}
