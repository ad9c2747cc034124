/**
 * PolicyError: every problem found in a policy document, each with the path of the field
 * (`policies[0].schedule.full`) and, when parsed from a file, its line and column. It is a
 * RequestError (400) so the media server answers a bad policy body with the whole list.
 */

import { RequestError } from '../messages.js';
import { editDistance } from './timezone.js';

export type PathSegment = string | number;

export interface PolicyProblem {
  /** The field, e.g. `policies[0].schedule.full`; empty for the document as a whole. */
  path: string;
  message: string;
  /** Set when the policy came from a file given with `file`. */
  file?: string;
  /** 1-based, when known (YAML and JSON documents). */
  line?: number;
  column?: number;
}

export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? seg : `.${seg}`;
  }
  return out;
}

/** One line per problem: `file:line:col: path: message`. */
export function formatProblem(p: PolicyProblem): string {
  let where = p.file ?? '';
  if (p.line !== undefined) where += `${where ? ':' : 'line '}${p.line}${p.column !== undefined ? `:${p.column}` : ''}`;
  const head = [where, p.path].filter((s) => s !== '').join(': ');
  return head ? `${head}: ${p.message}` : p.message;
}

export class PolicyError extends RequestError {
  override readonly name = 'PolicyError';
  readonly problems: readonly PolicyProblem[];
  constructor(problems: readonly PolicyProblem[]) {
    const lines = problems.map(formatProblem);
    const message = problems.length === 1 ? `invalid policy: ${lines[0]}` : `invalid policy, ${problems.length} problems:\n  ${lines.join('\n  ')}`;
    super('invalid_policy', message, { problems: problems.map((p) => ({ ...p })) });
    this.problems = problems;
  }
}

/** Collects problems with their paths while a document is checked. */
export class ProblemList {
  readonly items: { path: PathSegment[]; message: string }[] = [];
  add(path: readonly PathSegment[], message: string): void {
    this.items.push({ path: [...path], message });
  }
  get size(): number {
    return this.items.length;
  }
}

/** `did you mean "keep-daily"?` for a mistyped key, or the list of keys allowed there. */
export function unknownKeyMessage(key: string, known: readonly string[]): string {
  const norm = (s: string): string => s.toLowerCase().replace(/[-_\s]/g, '');
  const same = known.find((k) => norm(k) === norm(key));
  let best = same;
  if (!best) {
    let bestDistance = Infinity;
    for (const k of known) {
      const d = editDistance(norm(key), norm(k));
      if (d < bestDistance) {
        bestDistance = d;
        best = k;
      }
    }
    if (bestDistance > Math.max(2, Math.floor(key.length / 4))) best = undefined;
  }
  return best
    ? `unknown key ${JSON.stringify(key)}; did you mean ${JSON.stringify(best)}?`
    : `unknown key ${JSON.stringify(key)}; expected one of ${known.join(', ')}`;
}
