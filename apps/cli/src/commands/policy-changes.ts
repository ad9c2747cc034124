/**
 * What `hoard policy apply|create|update -f FILE [--dry-run]` prints: per policy whether
 * it was (or, with --dry-run, would be) created or updated, or is unchanged. The server
 * does not rewrite an unchanged policy, so only created and updated ones changed.
 */
import { AnswerFormatError } from '@hoard/protocol/client';
import type { API_ROUTES, RouteReply } from '@hoard/protocol/api';

export type PolicyChanges = RouteReply<typeof API_ROUTES.applyPolicies>;

export function printPolicyChanges(result: PolicyChanges, options: { dryRun: boolean; json: boolean; file: string }, out: (line: string) => void): void {
  // A server from before --dry-run ignores the flag and stores the file: never pass that off as a plan.
  if (options.dryRun && result.dryRun !== true) {
    throw new AnswerFormatError(
      `the server does not know --dry-run and applied ${options.file} (${result.policies.map((p) => `${p.name} ${p.action}`).join(', ')}); upgrade it`,
    );
  }
  if (options.json) {
    out(JSON.stringify({ dryRun: options.dryRun, policies: result.policies }));
    return;
  }
  for (const p of result.policies) out(`policy ${p.name} ${p.action === 'unchanged' ? 'unchanged' : options.dryRun ? `would be ${p.action}` : p.action}`);
  const changing = result.policies.filter((p) => p.action !== 'unchanged').length;
  if (options.dryRun)
    out(`dry run: nothing was stored; ${changing} of ${result.policies.length} ${result.policies.length === 1 ? 'policy' : 'policies'} would change`);
  else if (changing === 0 && result.policies.length > 0) out('nothing changed: every policy in the file is as stored');
}
