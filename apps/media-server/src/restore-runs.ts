/**
 * Restore runs: `hoard restore --to agent:NAME:PATH`. The server never calls an agent, so
 * a restore onto an agent's host is a run queued for that agent, like a backup. The
 * agent claims it, streams the snapshot from the restore route (every chunk and the
 * stream hash checked here) and writes it on its host, then reports what it wrote.
 *
 * The snapshot is pinned when the run is queued (an `at` or a prefix becomes one id), so
 * the agent restores exactly what the operator was told. While the run is running, its
 * agent may read that snapshot of that job through the restore route even when the job
 * belongs to another agent (restoring kvm-01's VM onto kvm-02); nothing else of the job.
 */
import type { Catalog } from '@hoard/catalog';
import { RequestError, type CreateRunRequest, type RestoreRunSpec, type RunView } from '@hoard/protocol';
import type { Repository } from '@hoard/repository';
import type { Principal } from './auth.js';
import type { RunBoard } from './run-board.js';

export async function queueRestoreRun(catalog: Catalog, repo: Repository, runs: RunBoard, body: CreateRunRequest): Promise<RunView> {
  const request = body.restore!;
  const agent = await catalog.getAgent(body.agent);
  if (!agent)
    throw new RequestError('agent_not_found', `no agent ${body.agent} (\`hoard agent list\` shows the agents; \`hoard agent add ${body.agent}\` creates one)`);
  if (agent.revokedAt) {
    throw new RequestError(
      'conflict',
      `agent ${body.agent} was revoked at ${agent.revokedAt}: it can no longer connect, so it would never pick up this restore; restore to another agent`,
    );
  }
  const database = request.database === undefined ? undefined : checkDatabaseUrl(request.database);
  if ((database === undefined) === (request.path === undefined))
    throw new RequestError('invalid_request', 'restore: give path (a file, device or new directory on the agent) or database (a URL), one of them');
  if (database !== undefined && (request.file !== undefined || request.force))
    throw new RequestError('invalid_request', 'restore: file and force do not apply to a database restore');
  const snapshot = await repo.findSnapshot(body.job, {
    id: request.snapshot,
    at: request.at === undefined ? undefined : new Date(request.at),
    source: request.source,
  });
  const kind = snapshot.meta.source.kind;
  if (request.file !== undefined && kind !== 'directory') {
    throw new RequestError(
      'invalid_request',
      `--file picks one file out of a directory snapshot, but snapshot ${snapshot.id} of job ${body.job} is a ${kind} snapshot`,
    );
  }
  if (database !== undefined && kind !== 'stream')
    throw new RequestError(
      'invalid_request',
      `a database restore takes a dump (a stream snapshot), but snapshot ${snapshot.id} of job ${body.job} is a ${kind} snapshot`,
    );
  const spec: RestoreRunSpec = {
    snapshot: snapshot.id,
    source: snapshot.meta.source.name,
    kind,
    startedAt: snapshot.meta.startedAt,
    logicalBytes: snapshot.meta.logicalBytes,
    path: request.path ?? database!,
    ...(database !== undefined ? { database } : {}),
    ...(request.force ? { force: true } : {}),
    ...(request.file !== undefined ? { file: request.file } : {}),
  };
  return runs.create(body.agent, body.job, [], undefined, undefined, spec);
}

/**
 * Which snapshots of `job` the caller may read through the restore route: all of them
 * (admin, or the job's own agent), or those of the caller's running restore runs of the
 * job. Throws 403 when there are none.
 */
export async function restoreReadAccess(catalog: Catalog, who: Principal, job: string): Promise<(snapshotId: string) => boolean> {
  // Admins and operators restore any job (viewers may not call the route at all).
  if (who.kind !== 'agent') return () => true;
  if ((await catalog.getJob(job))?.agent === who.name) return () => true;
  const running = await catalog.listRuns({ agent: who.name, state: 'running' });
  const pinned = new Set<string>();
  for (const run of running) {
    const spec = (run.result as { restore?: RestoreRunSpec } | undefined)?.restore;
    if (run.job === job && spec) pinned.add(spec.snapshot);
  }
  if (pinned.size === 0) throw new RequestError('forbidden', `agent ${who.name} may not restore job ${job}`);
  return (id) => pinned.has(id);
}

/**
 * A database URL a restore run may carry: one of the engines the agent restores into, and
 * no password. Run records are listed to every reader, and the server keeps no database
 * secrets: the agent's host supplies the password (~/.pgpass, PGPASSWORD, ~/.my.cnf,
 * MYSQL_PWD), as it does for its dumps.
 */
export function checkDatabaseUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    throw new RequestError('invalid_request', `restore.database must be a URL such as postgres://user@host:5432/db; got ${JSON.stringify(text)}`);
  }
  if (!['postgres:', 'postgresql:', 'mysql:', 'mariadb:'].includes(url.protocol))
    throw new RequestError('invalid_request', `restore.database: expected postgres://, postgresql://, mysql:// or mariadb://; got ${url.protocol}//`);
  if (url.password !== '')
    throw new RequestError(
      'invalid_request',
      "restore.database must not carry a password (run records are shown to every reader): put it on the agent's host (~/.pgpass or PGPASSWORD; ~/.my.cnf or MYSQL_PWD)",
    );
  if (url.pathname.replace(/^\//, '') === '') throw new RequestError('invalid_request', `restore.database ${url.href}: name the database to restore into`);
  return url.href;
}
