/**
 * An error as the API answers it: one lookup from the error's code (@hoard/errors) to
 * the status, and the JSON body `{code, message, status, ...details}` (docs/errors.md).
 */
import { errorCodeOf, httpStatusOf, type ErrorCode } from '@hoard/errors';
import { MAX_JSON_BYTES } from '@hoard/protocol';
import { findEnvironmentError } from '@hoard/repository';

export interface DescribedError {
  code: ErrorCode;
  status: number;
  message: string;
  details?: Record<string, unknown>;
}

/** fastify's own refusals (body parsing, routing) by their FST_ codes. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_BODY_TOO_LARGE: 'body_too_large',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_request',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_request',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_request',
  FST_ERR_BAD_URL: 'invalid_request',
  FST_ERR_VALIDATION: 'invalid_request',
};

/** fastify's messages in the words of the rest of the API. */
const FASTIFY_MESSAGES: Record<string, (message: string) => string> = {
  FST_ERR_CTP_INVALID_JSON_BODY: (m) => `request body is not valid JSON: ${m}`,
  FST_ERR_CTP_EMPTY_JSON_BODY: () => 'request body is not valid JSON: it is empty',
  FST_ERR_CTP_BODY_TOO_LARGE: () => `request body is over this call's limit of ${MAX_JSON_BYTES} bytes`,
};

export function describeError(err: unknown): DescribedError {
  // The server's disk or bucket refused (full, read-only, no permission, over quota).
  const environment = findEnvironmentError(err);
  if (environment) return { code: 'storage_refused', status: httpStatusOf('storage_refused'), message: `the server's storage refused: ${environment.message}` };
  const message = err instanceof Error ? err.message : String(err);
  let code = errorCodeOf(err);
  const fastifyCode = (err as { code?: unknown } | null)?.code;
  if (code === undefined && typeof fastifyCode === 'string') code = FASTIFY_CODES[fastifyCode];
  if (code === undefined) return { code: 'internal', status: 500, message: `internal error: ${message}` };
  const details = (err as { details?: Record<string, unknown> }).details;
  return {
    code,
    status: httpStatusOf(code),
    message:
      code === 'data_damaged'
        ? `stored data is damaged: ${message}`
        : typeof fastifyCode === 'string'
          ? (FASTIFY_MESSAGES[fastifyCode]?.(message) ?? message)
          : message,
    ...(details !== undefined ? { details } : {}),
  };
}

/** The JSON body of an error answer; `error` repeats the message for agents that predate codes. */
export function errorBody(e: DescribedError): Record<string, unknown> {
  return { code: e.code, message: e.message, status: e.status, error: e.message, ...e.details };
}

/**
 * A schema validation failure in words a user can act on: `body.full must be boolean`
 * becomes `full must be boolean` (the field the user typed), with what was given.
 */
interface ValidationError {
  instancePath: string;
  schemaPath?: string;
  message?: string;
  params?: Record<string, unknown>;
  keyword: string;
  parentSchema?: { description?: string; properties?: Record<string, { description?: string }> };
}

/**
 * A union of objects told apart by `kind` (notification targets) fails in every branch;
 * only the errors of the branch whose kind was given say what is wrong. With no branch of
 * that kind, the errors about `kind` itself ("must be one of smtp, webhook, command").
 */
function byKind(errors: readonly ValidationError[]): readonly ValidationError[] {
  const branchOf = (e: ValidationError) => /\/anyOf\/(\d+)\//.exec(e.schemaPath ?? '')?.[1];
  const isKind = (e: ValidationError) => e.keyword === 'const' && e.instancePath.endsWith('/kind');
  const wrongKind = new Set(errors.filter(isKind).map(branchOf));
  if (wrongKind.size === 0) return errors;
  const kept = errors.filter((e) => branchOf(e) !== undefined && !wrongKind.has(branchOf(e)));
  return kept.length > 0 ? kept : errors.filter(isKind);
}

export function validationMessage(context: string, all: readonly ValidationError[], value: unknown): string {
  const errors = byKind(all);
  // A wrong value says more than a missing neighbour: report it first.
  const first = errors.find((e) => e.keyword !== 'required') ?? errors[0];
  if (!first) return `${context} is not valid`;
  // `/targets/0/ok` is written as the user would: `targets[0].ok`.
  const path = first.instancePath
    .split('/')
    .slice(1)
    .map((k) => (/^\d+$/.test(k) ? `[${k}]` : `.${k}`))
    .join('')
    .replace(/^\./, '');
  if (first.keyword === 'required') {
    const missing = String(first.params?.missingProperty);
    const rule = first.parentSchema?.properties?.[missing]?.description;
    return `${path ? `${path}.` : ''}${missing} ${rule !== undefined ? `must be ${rule}` : 'is required'}${context === 'body' ? '' : ` (in the ${context})`}; got nothing`;
  }
  const got = first.instancePath
    .split('/')
    .slice(1)
    .reduce<unknown>((v, k) => (v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), value);
  const field = path === '' ? (context === 'body' ? 'the request body' : `the ${context}`) : path;
  // A union of literals fails once per literal: name them all.
  const literals = errors.filter((e) => e.keyword === 'const' && e.instancePath === first.instancePath).map((e) => String(e.params?.allowedValue));
  // The schema's description says what is allowed in words ("1-128 characters of ...").
  const described = first.parentSchema?.description;
  const what =
    literals.length > 0
      ? `must be one of ${literals.join(', ')}`
      : described !== undefined && first.keyword !== 'additionalProperties'
        ? `must be ${described}`
        : (inWords(first.keyword, first.params, first.parentSchema as { minLength?: number; maxLength?: number } | undefined) ??
          first.message ??
          'is not valid');
  return `${field} ${what}; got ${JSON.stringify(got) ?? 'nothing'}`;
}

const TYPE_WORDS: Record<string, string> = {
  boolean: 'true or false',
  integer: 'a whole number',
  number: 'a number',
  string: 'a string',
  object: 'a JSON object',
  array: 'a list',
};

/** ajv's keywords in the words the rest of the API uses. */
function inWords(
  keyword: string,
  params: Record<string, unknown> | undefined,
  schema: { minLength?: number; maxLength?: number } | undefined,
): string | undefined {
  if (keyword === 'type') return `must be ${TYPE_WORDS[String(params?.type)] ?? String(params?.type)}`;
  if ((keyword === 'minLength' || keyword === 'maxLength') && schema?.maxLength !== undefined) {
    return `must be a ${schema.minLength ? 'non-empty ' : ''}string of at most ${schema.maxLength} characters`;
  }
  if (keyword === 'additionalProperties') return `has an unknown field ${JSON.stringify(params?.additionalProperty)}`;
  return undefined;
}
