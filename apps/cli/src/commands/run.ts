/**
 * `hoard run --server URL --agent NAME --job J --source SPEC [--source SPEC...]`: queues a
 * backup for an agent and, unless --no-wait, follows it to its result (`hoard job run`
 * follows its runs here too).
 *
 * A command of its own, away from remote.ts: a scheduler or a script starts one process
 * per run, so what it loads is time and CPU of every run. It loads the client without
 * TypeBox (the routes' plain heads, RUN_VIEW_SHAPE for --json) and neither the chunker
 * nor the repository unless a job name is wrong.
 */
import { formatBytes } from '@hoard/chunker/errors';
import { JOB_NAME } from '@hoard/errors';
import type { RunView } from '@hoard/protocol';
import { parseSourceSpec, RUN_VIEW_SHAPE, type HoardClient } from '@hoard/protocol/client';
import { formatDedup } from '../dedup.js';
import { UsageError } from '../errors.js';
import { withNulls } from '../json-output.js';
import { ProgressLine } from '../progress.js';
import { serverClient, type ServerOptions } from '../server-client.js';
import { renderTable } from '../table.js';

/** A run that finished with failures: exit 1 after printing the result. */
export class RunFailedError extends Error {
  override readonly name = 'RunFailedError';
  readonly code = 'work_failed';
}

export interface RunCommandOptions extends ServerOptions {
  agent?: string;
  job?: string;
  source?: string[];
  store?: string;
  pre?: string;
  post?: string;
  json?: boolean;
  wait?: boolean;
  full?: boolean;
}

export async function runRun(options: RunCommandOptions, out: (line: string) => void): Promise<void> {
  if (!options.agent) throw new UsageError('--agent is required: the agent that runs the job (`hoard agent list`)');
  if (!options.job) throw new UsageError('--job is required');
  // The repository's check (and its error) only for a name that fails: it loads the native hash.
  if (!JOB_NAME.regex.test(options.job)) (await import('@hoard/repository/manifest')).validateJobName(options.job);
  const sources = options.source ?? [];
  if (sources.length === 0)
    throw new UsageError('--source is required, e.g. --source vm:/var/lib/libvirt/images/*.qcow2 or --source "cmd:pg_dumpall -U postgres"');
  for (const s of sources) {
    try {
      parseSourceSpec(s);
    } catch (err) {
      throw new UsageError(`--source ${s}: ${(err as Error).message}`);
    }
  }
  const client = await serverClient(options);
  const hooks = options.pre !== undefined || options.post !== undefined ? { pre: options.pre, post: options.post } : undefined;
  const run = await client.api.createRun({
    body: { agent: options.agent, job: options.job, sources, store: options.store, hooks, ...(options.full ? { full: true } : {}) },
  });
  await followRun(client, run, { wait: options.wait !== false, json: options.json }, out);
}

/**
 * What `hoard run` and `hoard job run` print for a queued run: with `wait`, progress
 * while it runs and the result table (exit 1 unless it succeeded); without, one line.
 */
export async function followRun(client: HoardClient, queued: RunView, options: { wait: boolean; json?: boolean }, out: (line: string) => void): Promise<void> {
  let run = queued;
  if (!options.wait) {
    out(options.json ? runJson(run) : `run ${run.id} queued for agent ${run.agent}`);
    return;
  }
  const progress = ProgressLine.forCommand(options.json);
  while (run.state === 'queued' || run.state === 'running') {
    run = await client.api.getRun({ params: { id: run.id }, query: { wait: 2 } });
    if (run.progress) progress.update(run.progress.bytesRead, run.progress.bytesTotal, `sent ${formatBytes(run.progress.bytesSent)}  ${run.progress.target}`);
  }
  progress.done();
  if (options.json) out(runJson(run));
  else printRun(run, out);
  if (run.state !== 'succeeded') throw new RunFailedError(`run ${run.id} ${run.state}: ${run.error ?? 'see above'}`);
}

/** A run as `--json` prints it: the server's record, with null for every field it left out. */
export const runJson = (run: RunView): string => JSON.stringify(withNulls(RUN_VIEW_SHAPE, run));

function printRun(run: RunView, out: (line: string) => void): void {
  out(`run ${run.id}: job ${run.job} on agent ${run.agent}: ${run.state}`);
  for (const name of run.discovered) out(`  newly discovered: ${name}`);
  out(
    renderTable(
      ['source', 'result', 'read', 'sent', 'new', 'dedup', 'snapshot'],
      run.targets.map((t) => [
        t.name,
        t.ok ? 'ok' : `FAILED: ${t.error}`,
        t.totals ? formatBytes(t.totals.bytesRead) : '-',
        t.totals ? formatBytes(t.totals.bytesSent) : '-',
        t.totals ? formatBytes(t.totals.bytesNew) : '-',
        t.totals ? formatDedup(t.snapshot?.logicalBytes ?? t.totals.bytesRead, t.totals.bytesNew) : '-',
        t.snapshot?.id ?? '-',
      ]),
    ),
  );
  for (const t of run.targets) {
    if (t.image?.unchanged)
      out(
        `  ${t.name}: unchanged since snapshot ${t.image.previous} (same size, mtime and inode): not read, its ${formatBytes(t.image.bytesUnchanged)} referred to again`,
      );
    if (t.files)
      out(
        `  ${t.name}: ${t.files.read} files read, ${t.files.unchanged} unchanged (${formatBytes(t.files.bytesUnchanged)} not read again)${t.files.skipped > 0 ? `, ${t.files.skipped} skipped (see the agent's log)` : ''}`,
      );
  }
}
