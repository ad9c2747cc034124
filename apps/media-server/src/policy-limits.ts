/**
 * Policy limits the server enforces outside the scheduler (docs/policies.md, "limits"):
 * the number of runs an agent may run at once, from the stored policies naming it.
 */
import type { Catalog } from '@hoard/catalog';
import { agentRunLimit, validatePolicy, type Policy } from '@hoard/protocol';

/** The smallest max-concurrent-jobs-per-agent of the stored policies naming `agent` (default 1). */
export async function agentRunLimitFromCatalog(catalog: Catalog, agent: string): Promise<number> {
  const policies: Policy[] = [];
  for (const record of await catalog.listPolicies()) {
    try {
      policies.push(validatePolicy(record.document));
    } catch {
      // an invalid stored policy is reported by the scheduler and limits nothing
    }
  }
  return agentRunLimit(policies, agent);
}
