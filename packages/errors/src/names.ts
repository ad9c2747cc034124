/**
 * The naming rules every layer checks: the repository (snapshot keys carry job names),
 * the catalog (records), the API schemas and the CLI. Written once here; each is a
 * pattern and the words for a message ("job must be 1-128 characters of ...").
 *
 * They live in this package because it is the one every other of ours depends on and
 * that depends on nothing.
 */
export interface NameRule {
  /** The JSON Schema / RegExp source, anchored. */
  readonly pattern: string;
  readonly regex: RegExp;
  /** What is allowed, to follow "must be". */
  readonly words: string;
}

function rule(pattern: string, words: string): NameRule {
  return { pattern, regex: new RegExp(pattern), words };
}

/** Jobs (and policies, stores, record ids): what snapshot keys allow (docs/format.md). */
export const JOB_NAME = rule('^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$', "1-128 characters of letters, digits, '.', '_' or '-', starting with a letter or digit");

/** Agents: lower case, as host names are compared. */
export const AGENT_NAME = rule(
  '^[a-z0-9][a-z0-9._-]{0,62}$',
  "1-63 characters of lower-case letters, digits, '.', '_' or '-', starting with a letter or digit",
);
