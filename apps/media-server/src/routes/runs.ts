/** Runs (work handed to agents) and jobs: queue, list, follow, cancel; the agent's progress, lease and finish. */
import { API_ROUTES as R, RequestError, parseSourceSpec, type FinishRunRequest, type HistoryEntry, type JobSummary } from '@hoard/protocol';
import type { Api } from '../http/api.js';
import { abortOnClose, pollWait } from '../http/polls.js';
import { jobHistory, listJobSummaries, queueJobRun } from '../job-history.js';
import { queueRestoreRun } from '../restore-runs.js';
import { checkFinishReport } from '../run-results.js';
import type { MediaServer } from '../server.js';
import { policyJobs } from '../policy-scheduler.js';
import { requireAgent } from './agents.js';
import { jobForPeople, runForPeople } from './redact.js';
import { checkCreateRun } from './request-checks.js';

export function runRoutes(api: Api, server: MediaServer): void {
  const { catalog, runs, log } = server;

  api.json(R.createRun, async ({ body: raw, who }) => {
    const body = checkCreateRun(raw, (spec) => void parseSourceSpec(spec));
    if (body.restore) {
      const queued = await queueRestoreRun(catalog, server.repo, runs, body);
      log.info({ run: queued.id, agent: body.agent, job: body.job, snapshot: queued.restore?.snapshot, path: queued.restore?.path }, 'restore run queued');
      return runForPeople(queued);
    }
    // Operators restore; what an agent backs up and where is an admin's decision.
    if (who.kind !== 'admin')
      throw new RequestError(
        'forbidden',
        `a token of role ${who.kind} may queue restore runs only; backup runs of new sources need an admin token (\`hoard job run\` runs an existing job)`,
      );
    const agent = await catalog.getAgent(body.agent);
    if (!agent || agent.revokedAt) throw new RequestError('agent_not_found', `no agent ${body.agent} (\`hoard agent add ${body.agent}\` creates it)`);
    // The job is bound to the agent: only that agent may write its snapshots.
    const existing = await catalog.getJob(body.job);
    if (body.store !== undefined) await server.repo.storeForJob(body.job, body.store);
    await catalog.putJob({ name: body.job, agent: body.agent, sources: body.sources, store: body.store ?? existing?.store });
    const run = await runs.create(body.agent, body.job, body.sources, body.hooks, body.full, undefined, { manual: true }, { bandwidth: body.bandwidth });
    log.info({ run: run.id, agent: body.agent, job: body.job }, 'run queued');
    return runForPeople(run);
  });

  api.json(R.listRuns, async ({ query }) => {
    const list = await catalog.listRuns({ agent: query.agent, newestFirst: true, limit: 100 });
    return { runs: (await Promise.all(list.map((r) => runs.view(r.id)))).map((run) => runForPeople(run)) };
  });

  api.json(R.getRun, async ({ params, query, who, raw, res }) => {
    const run = await runs.get(params.id);
    if (who.kind === 'agent' && run.agent !== who.name) throw new RequestError('forbidden', `run ${params.id} belongs to agent ${run.agent}`);
    return runForPeople(await runs.waitFinished(params.id, pollWait(query.wait), abortOnClose(raw, res, server.polls.signal)), who);
  });

  api.json(R.runProgress, async ({ params, body, who }) => {
    const { cancel } = await runs.progress(params.id, requireAgent(who), body);
    return { ok: true as const, ...(cancel ? { cancel: true as const } : {}) };
  });

  /** Renews a running run's lease; the answer tells the agent whether to stop (cancel). */
  api.json(R.renewLease, async ({ params, who }) => {
    const agent = requireAgent(who);
    const answer = await runs.renew(params.id, agent);
    await catalog.touchAgent(agent, {});
    return answer;
  });

  api.json(R.finishRun, async ({ params, body, who }) => {
    // Snapshots and byte counts come from the server's session records (run-results.ts).
    const view = await runs.finish(params.id, requireAgent(who), body as FinishRunRequest, (run, report) => checkFinishReport(catalog, run, report));
    await server.scheduler.runFinished(view);
    server.afterRun(view);
    log.info({ run: params.id, state: view.state, error: view.error }, 'run finished');
    return view;
  });

  api.json(R.cancelRun, async ({ params }) => {
    const view = await runs.cancel(params.id, (run) => server.leases.describeSilence(run));
    log.info({ run: params.id, state: view.state, error: view.error }, view.state === 'cancelled' ? 'run cancelled' : 'run asked to stop');
    return runForPeople(view);
  });

  // The catalog keeps states and kinds as plain strings; they are the schema's enums.
  api.json(R.listJobs, async () => ({ jobs: ((await listJobSummaries(catalog, server.now())) as JobSummary[]).map(jobForPeople) }));

  api.json(R.runJob, async ({ params, body }) => {
    const run = await queueJobRun(catalog, runs, params.job, body?.full === true);
    log.info({ run: run.id, agent: run.agent, job: params.job }, 'run queued');
    return runForPeople(run);
  });

  /** The job may change: not a policy's (the policy names its jobs), and nothing of it queued or running. */
  async function changeableJob(name: string) {
    const policy = await policyOf(name);
    if (policy)
      throw new RequestError('conflict', `job ${name} belongs to policy ${policy}: change the policy (its name and agents make the job's name), not the job`);
    const record = await catalog.getJob(name);
    if (!record) throw new RequestError('job_not_found', `no job ${name} (\`hoard job list\` shows them)`);
    const busy = (await catalog.listRuns({ agent: record.agent })).filter((r) => r.job === name && (r.state === 'queued' || r.state === 'running'));
    if (busy.length > 0)
      throw new RequestError('conflict', `job ${name} has a ${busy[0]!.state} run (${busy[0]!.id}); wait for it or \`hoard job cancel ${busy[0]!.id}\` first`);
    return record;
  }

  /** The policy that names this job (it may not have run yet), if any. */
  async function policyOf(job: string): Promise<string | undefined> {
    return (await server.policies()).find((p) => policyJobs(p).includes(job))?.name;
  }

  api.json(R.deleteJob, async ({ params }) => {
    await changeableJob(params.job);
    await catalog.deleteJob(params.job);
    const kept = (await catalog.listSnapshots({ job: params.job })).length;
    log.info({ job: params.job, snapshotsKept: kept }, 'job deleted');
    return {
      job: params.job,
      deleted: true as const,
      snapshotsKept: kept,
      note: `its snapshots stay restorable under this name; \`hoard prune --repo R --job ${params.job} --keep-last N\` removes them`,
    };
  });

  api.json(R.renameJob, async ({ params, body }) => {
    const record = await changeableJob(params.job);
    if (await catalog.getJob(body.name)) throw new RequestError('conflict', `a job ${body.name} exists already`);
    const claimed = await policyOf(body.name);
    if (claimed) throw new RequestError('conflict', `policy ${claimed} names a job ${body.name}: choose another name`);
    // Snapshot manifests are write-once objects that carry their job's name: they keep it.
    // The new name takes the same agent, sources and fingerprint store, so its first run
    // dedups against everything the old name stored.
    // A store of the job's own refuses another job name (StoreScopeError): before any change.
    if (record.store !== undefined) await server.repo.storeForJob(body.name, record.store);
    await catalog.putJob({ name: body.name, agent: record.agent, sources: record.sources, store: record.store });
    await catalog.deleteJob(params.job);
    const old = (await catalog.listSnapshots({ job: params.job })).length;
    log.info({ job: body.name, renamedFrom: params.job }, 'job renamed');
    return {
      job: body.name,
      renamedFrom: params.job,
      snapshotsUnderOldName: old,
      note: `snapshots made before the rename stay listed and restorable as job ${params.job}`,
    };
  });

  api.json(R.jobHistory, async ({ params, query }) => {
    const record = await catalog.getJob(params.job);
    if (!record) throw new RequestError('job_not_found', `no job ${params.job} (\`hoard job list\` shows them)`);
    return { job: record.name, entries: (await jobHistory(catalog, record, query.limit ?? 20)) as HistoryEntry[] };
  });
}
