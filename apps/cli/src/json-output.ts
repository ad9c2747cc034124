/**
 * One convention for every `--json` output (docs/cli.md, "JSON output"): camelCase keys,
 * and a value that does not apply or is not known is `null`, never left out, so a
 * consumer sees the same keys every time.
 *
 * Records the media server answers with are declared as schemas in @hoard/protocol
 * (replySchemas), where an optional field may be left out; withNulls fills those in from
 * the schema, so server records printed as they came follow the convention too.
 */

/** The part of a JSON schema (TypeBox) that says which fields a record has. */
export interface RecordSchema {
  properties?: Record<string, RecordSchema>;
  items?: RecordSchema;
  anyOf?: RecordSchema[];
}

/**
 * `value` with every field its schema names present: absent ones (and undefined) as null,
 * in nested records and arrays too. `schema` is a TypeBox schema (a JSON schema object).
 */
export function withNulls<T>(jsonSchema: object, value: T): T {
  const schema = jsonSchema as RecordSchema;
  if (value === undefined || value === null) return null as T;
  if (Array.isArray(value)) return (schema.items ? value.map((v) => withNulls(schema.items!, v)) : value) as T;
  if (typeof value !== 'object') return value;
  // A record, or a union with one (nullable(record)).
  const shape = schema.properties ? schema : schema.anyOf?.find((s) => s.properties !== undefined);
  if (!shape?.properties) return value;
  const source = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [key, fieldSchema] of Object.entries(shape.properties)) out[key] = withNulls(fieldSchema, source[key]);
  // A field the schema does not know yet (a newer server) is kept as it came.
  for (const [key, v] of Object.entries(source)) if (!(key in out)) out[key] = v === undefined ? null : v;
  return out as T;
}

/** An optional value as JSON: null when absent. */
export const orNull = <T>(value: T | undefined): T | null => (value === undefined ? null : value);
