/**
 * `hoard restore --server URL JOB [--at T | --snapshot ID] [--source S] [--file P]
 *   --to agent:NAME:PATH [--force]`
 *
 * Restores onto an agent's host. The server never calls agents, so this queues a restore
 * run for agent NAME (the server pins the snapshot now), waits while the agent streams
 * and writes it (showing the run's progress), and prints what the agent reports.
 */
import { formatBytes } from '@hoard/chunker';
import { AGENT_NAME } from '@hoard/errors';
import type { RestoreRunRequest } from '@hoard/protocol/api';
import { validateJobName } from '@hoard/repository/manifest';
import { UsageError } from '../errors.js';
import { ProgressLine } from '../progress.js';
import { serverClient } from '../server-client.js';
import { parseTime } from '../time.js';
import { RestoreFailedError, type RemoteRestoreOptions } from './remote.js';

export const AGENT_TARGET_PREFIX = 'agent:';

/** `agent:NAME:PATH` -> {agent, path}; PATH must be absolute (it is a path on the agent's host). */
export function parseAgentTarget(to: string): { agent: string; path: string } {
  const rest = to.slice(AGENT_TARGET_PREFIX.length);
  const colon = rest.indexOf(':');
  const agent = colon < 0 ? rest : rest.slice(0, colon);
  const path = colon < 0 ? '' : rest.slice(colon + 1);
  if (!AGENT_NAME.regex.test(agent))
    throw new UsageError(`--to ${to}: expected agent:NAME:PATH with an agent name (\`hoard agent list\`), e.g. agent:kvm-02:/var/lib/libvirt/images/web.img`);
  if (!path.startsWith('/'))
    throw new UsageError(`--to ${to}: the path on agent ${agent} must be absolute, e.g. agent:${agent}:/srv/restore/${path || 'web.img'}`);
  return { agent, path };
}

export async function runRestoreToAgent(job: string, options: RemoteRestoreOptions, out: (line: string) => void): Promise<void> {
  validateJobName(job);
  const { agent, path } = parseAgentTarget(options.to!);
  if (options.at !== undefined && options.snapshot !== undefined) throw new UsageError('give --at or --snapshot, not both');
  if (options.offset !== undefined || options.length !== undefined)
    throw new UsageError('--offset/--length are not supported with --to agent:NAME:PATH; restore the whole snapshot or one --file');
  const restore: RestoreRunRequest = { path };
  if (options.snapshot !== undefined) restore.snapshot = options.snapshot;
  if (options.at !== undefined) restore.at = parseTime(options.at).toISOString();
  if (options.source !== undefined) restore.source = options.source;
  if (options.file !== undefined) restore.file = options.file;
  if (options.force) restore.force = true;
  const client = await serverClient(options);
  let run = await client.api.createRun({ body: { agent, job, restore } });
  const spec = run.restore!;
  if (!options.json)
    process.stderr.write(
      `restore run ${run.id}: snapshot ${spec.snapshot} of job ${job} (started ${spec.startedAt}) to ${path} on agent ${agent}; waiting for the agent\n`,
    );
  const progress = ProgressLine.forCommand(options.json === true);
  while (run.state === 'queued' || run.state === 'running') {
    run = await client.api.getRun({ params: { id: run.id }, query: { wait: 2 } });
    if (run.progress) progress.update(run.progress.bytesRead, run.progress.bytesTotal, `on agent ${agent}`);
  }
  progress.done();
  const target = run.targets[0];
  if (run.state !== 'succeeded' || !target?.restored) {
    if (options.json)
      out(JSON.stringify({ run: run.id, state: run.state, snapshot: spec.snapshot, job, agent, path, error: run.error ?? target?.error ?? null }));
    throw new RestoreFailedError(run.error ?? `restore run ${run.id} ${run.state}${target?.error ? `: ${target.error}` : ''}`);
  }
  const r = target.restored;
  const seconds = target.durationMs / 1000;
  if (options.json) {
    out(
      JSON.stringify({
        run: run.id,
        snapshot: r.snapshot,
        job,
        startedAt: spec.startedAt,
        agent,
        path: r.path,
        to: options.to,
        wrote: r.wrote,
        file: spec.file ?? null,
        bytes: r.bytes,
        files: r.files ?? null,
        directories: r.directories ?? null,
        symlinks: r.symlinks ?? null,
        seconds,
      }),
    );
    return;
  }
  const what =
    r.wrote === 'tree'
      ? `${r.files} files, ${r.directories} directories and ${r.symlinks} symlinks`
      : r.wrote === 'file'
        ? spec.file!
        : r.device
          ? 'the stream (block device, in place)'
          : 'the stream';
  out(
    `restored ${what} of snapshot ${r.snapshot} of job ${job} (started ${spec.startedAt}) to ${r.path} on agent ${agent}: ${formatBytes(r.bytes)} in ${seconds.toFixed(1)} s, every chunk checked by the server`,
  );
}
