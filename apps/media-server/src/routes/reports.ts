/** The backup-validity report and restore drills (docs/cli.md, "report validity"). */
import { API_ROUTES as R } from '@hoard/protocol';
import type { Api } from '../http/api.js';
import { policyJobs } from '../policy-scheduler.js';
import type { MediaServer } from '../server.js';
import { buildValidityReport } from '../validity-report.js';

export function reportRoutes(api: Api, server: MediaServer): void {
  api.json(R.validityReport, async ({ query }) =>
    buildValidityReport(server.catalog, server.repo, {
      now: server.now(),
      days: query.since === undefined ? 90 : Number(query.since.slice(0, -1)),
      server: server.options.notifications?.serverName ?? server.url,
      quotaBytes: server.options.quotaBytes,
    }),
  );

  api.json(R.runDrills, async ({ body }) => {
    const withSnapshots = [...new Set((await server.catalog.listSnapshots({})).map((s) => s.job))];
    const jobs = body.jobs ?? withSnapshots.sort();
    const policies = await server.policies();
    const drills = [];
    // One at a time: a drill reads whole snapshots, and the server keeps serving backups.
    for (const job of jobs) {
      const policy = policies.find((p) => policyJobs(p).includes(job));
      try {
        const r = await server.maintenance.drill(job, { policy: policy?.name, database: policy?.drill });
        drills.push({ job, ok: true, snapshot: r.snapshot, bytes: r.bytes, ms: r.ms, error: null, ...(r.database ? { database: r.database } : {}) });
      } catch (err) {
        drills.push({ job, ok: false, snapshot: null, bytes: null, ms: null, error: (err as Error).message });
      }
    }
    return { drills };
  });
}
