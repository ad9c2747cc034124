/**
 * prune, gc and verify through a media server (`--server`): the server does the work on
 * its repository, with each policy's retention rules, and records it in job history.
 *
 *   hoard prune --server URL [--policy P | --job J] [--dry-run] [--json]
 *   hoard gc --server URL [--dry-run] [--grace D] [--repack-threshold S] [--json]
 *   hoard verify --server URL [--job J] [--read-data [--subset N%]] [--json]
 */
import { validateJobName } from '@hoard/repository';
import { UsageError } from '../errors.js';
import { serverClient, type ServerOptions } from '../server-client.js';
import { parseGrace, parseRepackThreshold, printGcReport } from './gc.js';
import { printPrunePlan, prunePlanJson } from './prune.js';
import { parseSubset, printVerifyReport } from './verify.js';

export interface ServerPruneOptions extends ServerOptions {
  policy?: string;
  job?: string;
  dryRun?: boolean;
  json?: boolean;
  /** Rules on the command line make sense only with --repo. */
  keepRules?: string[];
}

export async function runServerPrune(options: ServerPruneOptions, out: (line: string) => void): Promise<void> {
  if (options.keepRules && options.keepRules.length > 0) {
    throw new UsageError(
      `${options.keepRules.join(', ')}: with --server the rules come from each job's policy (\`hoard policy show NAME\`); give rules only with --repo`,
    );
  }
  if (options.job !== undefined) validateJobName(options.job);
  if (options.job !== undefined && options.policy !== undefined) throw new UsageError('give --policy or --job, not both');
  const client = await serverClient(options);
  const answer = await client.api.prune({ body: { policy: options.policy, job: options.job, dryRun: options.dryRun === true } });
  if (options.json) {
    out(
      JSON.stringify({
        dryRun: answer.dryRun,
        jobs: answer.results.map((r) => ({ policy: r.policy, ...prunePlanJson(r) })),
        withoutRetention: answer.withoutRetention,
      }),
    );
    return;
  }
  if (answer.results.length === 0)
    out(options.job ? `job ${options.job} has no snapshots to prune` : 'no policy with retention rules has jobs yet; nothing to do');
  for (const plan of answer.results) {
    out(`policy ${plan.policy}, job ${plan.job}:`);
    printPrunePlan(plan, out, 'the next gc (the server runs one nightly, or `hoard gc --server`) frees the space they alone used');
  }
  for (const name of answer.withoutRetention) out(`policy ${name} has no retention rules: its snapshots are all kept`);
}

export interface ServerGcOptions extends ServerOptions {
  dryRun?: boolean;
  grace?: string;
  repackThreshold?: string;
  breakLock?: boolean;
  json?: boolean;
}

export async function runServerGc(options: ServerGcOptions, out: (line: string) => void): Promise<void> {
  const body = {
    dryRun: options.dryRun === true,
    graceMs: options.grace !== undefined ? parseGrace(options.grace) : undefined,
    repackThreshold: parseRepackThreshold(options.repackThreshold),
    breakLock: options.breakLock === true,
  };
  const client = await serverClient(options);
  printGcReport(await client.api.gc({ body }), options, out);
}

export interface ServerVerifyOptions extends ServerOptions {
  job?: string;
  readData?: boolean;
  subset?: string;
  json?: boolean;
}

/** Resolves to true when nothing is damaged. */
export async function runServerVerify(options: ServerVerifyOptions, out: (line: string) => void): Promise<boolean> {
  if (options.job !== undefined) validateJobName(options.job);
  const subset = parseSubset(options);
  const client = await serverClient(options);
  const report = await client.api.verify({ body: { job: options.job, readData: options.readData === true, subset } });
  printVerifyReport(report, options, out);
  return report.ok;
}
