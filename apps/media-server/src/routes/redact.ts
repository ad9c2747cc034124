/**
 * What people see of runs and jobs: source specs without their database passwords. The
 * agent that executes a run gets it whole (GET /v1/agent/work); admins, operators and
 * viewers never see a password through the API (policy views redact them the same way).
 */
import { redactSourceSpec, type JobSummary, type RunView } from '@hoard/protocol';
import type { Principal } from '../auth.js';

export function runForPeople(run: RunView, who?: Principal): RunView {
  if (who?.kind === 'agent') return run;
  return { ...run, sources: run.sources.map(redactSourceSpec) };
}

export function jobForPeople(job: JobSummary): JobSummary {
  return { ...job, sources: job.sources.map(redactSourceSpec) };
}
