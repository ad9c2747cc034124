/**
 * Pre/post hooks around a run: admin-given commands for consistency, e.g.
 * `virsh domfsfreeze web` before and `virsh domfsthaw web` after, or a disk-only
 * snapshot. They run under `bash -o pipefail -c` (like `cmd:` sources) with the run's
 * identity in the environment: HOARD_JOB, HOARD_RUN, HOARD_PHASE (pre|post), and for the
 * post hook HOARD_RESULT (succeeded|failed).
 */
import { spawn } from 'node:child_process';
import type { ErrorCode } from '@hoard/errors';

const HOOK_TIMEOUT_MS = 10 * 60_000;
const TAIL_BYTES = 2048;

export class HookFailedError extends Error {
  override readonly name = 'HookFailedError';
  readonly code: ErrorCode = 'work_failed';
}

export function runHook(phase: 'pre' | 'post', command: string, env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/bash', ['-o', 'pipefail', '-c', command], { env: { ...env, HOARD_PHASE: phase }, stdio: ['ignore', 'ignore', 'pipe'] });
    let tail = Buffer.alloc(0);
    child.stderr.on('data', (d: Buffer) => {
      tail = Buffer.concat([tail, d]);
      if (tail.length > TAIL_BYTES) tail = tail.subarray(tail.length - TAIL_BYTES);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), HOOK_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new HookFailedError(`${phase} hook \`${command}\` could not start: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve();
      const how = signal ? `was killed by ${signal}${signal === 'SIGKILL' ? ` (timeout ${HOOK_TIMEOUT_MS / 60_000} min?)` : ''}` : `exited with status ${code}`;
      const stderr = tail.toString('utf8').trim();
      reject(new HookFailedError(`${phase} hook \`${command}\` ${how}${stderr ? `: ${stderr}` : ''}`));
    });
  });
}
