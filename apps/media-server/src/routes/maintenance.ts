/** The server's own work on the repository: prune by the policies' retention, GC, verify. */
import { API_ROUTES as R, RequestError } from '@hoard/protocol';
import type { Api } from '../http/api.js';
import { pruneSummary } from '../maintenance.js';
import { policyJobs } from '../policy-scheduler.js';
import type { MediaServer } from '../server.js';

export function maintenanceRoutes(api: Api, server: MediaServer): void {
  /**
   * A job is pruned by the retention of the policy it belongs to; a policy prunes each of
   * its jobs; neither: every policy.
   */
  api.json(R.prune, async ({ body }) => {
    const dryRun = body.dryRun === true;
    let policies = await server.policies();
    if (body.policy !== undefined) {
      policies = policies.filter((p) => p.name === body.policy);
      if (policies.length === 0) throw new RequestError('policy_not_found', `no policy ${body.policy} (\`hoard policy list\` shows them)`);
    }
    let jobs: string[] | undefined;
    if (body.job !== undefined) {
      const job = body.job;
      policies = policies.filter((p) => policyJobs(p).includes(job));
      if (policies.length === 0)
        throw new RequestError(
          'not_found',
          `job ${job} belongs to no policy, so it has no retention rules; prune it with \`hoard prune --repo R --job ${job} --keep-...\``,
        );
      jobs = [job];
    }
    const results = [];
    for (const policy of policies) {
      for (const r of await server.maintenance.prunePolicy(policy, { dryRun, jobs })) results.push({ policy: policy.name, ...pruneSummary(r) });
    }
    return { dryRun, results, withoutRetention: policies.filter((p) => !p.retention).map((p) => p.name) };
  });

  api.json(R.gc, async ({ body }) =>
    server.maintenance.gc({ dryRun: body.dryRun === true, graceMs: body.graceMs, repackThreshold: body.repackThreshold, breakLock: body.breakLock === true }),
  );

  api.json(R.verify, async ({ body }) => server.maintenance.verify({ job: body.job, readData: body.readData === true, subset: body.subset }));
}
