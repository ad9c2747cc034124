/** Policies: applied as YAML or JSON documents (all or nothing), listed, shown, deleted. */
import {
  API_ROUTES as R,
  RequestError,
  nextPolicyRuns,
  parsePolicyDocument,
  policyToDocument,
  serializePolicies,
  validatePolicy,
  type Policy,
  type PolicyDocument,
} from '@hoard/protocol';
import type { Api } from '../http/api.js';
import { checkPolicyDocument, serverPolicyProblems } from '../policy-check.js';
import { policyJobName } from '../policy-scheduler.js';
import type { MediaServer } from '../server.js';

export function policyRoutes(api: Api, server: MediaServer): void {
  const { catalog, log } = server;

  /**
   * Creates or replaces policies. All or nothing: one invalid policy, or a create of one
   * that exists, stores none of them. A policy whose document is the same as stored is
   * "unchanged" (and not written); with dryRun nothing is written and the answer says what
   * would change.
   */
  api.json(R.applyPolicies, async ({ body }) => {
    const mode = body.mode ?? 'apply';
    const dryRun = body.dryRun === true;
    const policies = parsePolicyDocument(body.document, { format: body.format, file: body.file });
    const refused = (await serverPolicyProblems(policies, { catalog, copyTargets: server.maintenance.copyTargetNames() }))[0];
    if (refused) throw new RequestError(refused.code, refused.message);
    for (const policy of policies) {
      const exists = (await catalog.getPolicy(policy.name)) !== undefined;
      if (mode === 'create' && exists)
        throw new RequestError('policy_exists', `policy ${policy.name} exists; use \`hoard policy update\` or \`apply\` to change it`);
      if (mode === 'update' && !exists) throw new RequestError('policy_not_found', `no policy ${policy.name}; use \`hoard policy create\` or \`apply\``);
    }
    const stored: { name: string; action: 'created' | 'updated' | 'unchanged' }[] = [];
    for (const policy of policies) {
      const before = await catalog.getPolicy(policy.name);
      const document = policyToDocument(policy);
      const action = !before ? 'created' : JSON.stringify(before.document) === JSON.stringify(document) ? 'unchanged' : 'updated';
      if (!dryRun && action !== 'unchanged') await catalog.putPolicy(policy.name, document);
      stored.push({ name: policy.name, action });
    }
    if (!dryRun) {
      server.scheduler.wake();
      log.info({ policies: stored }, 'policies applied');
    }
    return { dryRun, policies: stored };
  });

  /** The editor's check: every problem with its line, and what applying would change (nothing is stored). */
  api.json(R.checkPolicies, async ({ body }) =>
    checkPolicyDocument(body.document, body.format, { catalog, copyTargets: server.maintenance.copyTargetNames() }),
  );

  api.json(R.listPolicies, async () => {
    const now = server.now();
    const out = [];
    for (const record of await catalog.listPolicies()) out.push(describePolicy(validatePolicy(record.document), record.updatedAt, now, 1));
    return { policies: out };
  });

  api.json(R.getPolicy, async ({ params, query }) => {
    const record = await catalog.getPolicy(params.name);
    if (!record) throw new RequestError('policy_not_found', `no policy ${params.name} (\`hoard policy list\` shows them)`);
    const policy = validatePolicy(record.document);
    return {
      ...describePolicy(policy, record.updatedAt, server.now(), query.next ?? 5),
      yaml: serializePolicies(policy, { format: 'yaml', redactSecrets: true }),
    };
  });

  api.json(R.deletePolicy, async ({ params }) => {
    if (!(await catalog.deletePolicy(params.name))) throw new RequestError('policy_not_found', `no policy ${params.name}`);
    log.info({ policy: params.name }, 'policy deleted');
    return { name: params.name, deleted: true as const, note: 'its jobs, snapshots and history stay' };
  });
}

function describePolicy(policy: Policy, updatedAt: string, now: Date, next: number) {
  const agents = policy.sources.flatMap((s) => s.agents);
  return {
    name: policy.name,
    updatedAt,
    jobs: agents.map((a) => ({ agent: a, job: policyJobName(policy, a) })),
    timeZone: policy.schedule.timeZone,
    nextRuns: nextPolicyRuns(policy, now, next).map((r) => ({ at: r.at.toISOString(), kind: r.kind })),
    // policyToDocument writes what validatePolicy accepts: the PolicyDocument schema.
    document: policyToDocument(policy, { redactSecrets: true }) as PolicyDocument,
  };
}
