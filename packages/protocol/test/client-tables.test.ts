/**
 * The typed client calls the API from plain tables (api/route-heads.ts, api/record-shapes.ts)
 * so that a `hoard` process loads no schema library; these tables must say what the
 * contracts in routes.ts and replies.ts say.
 */
import { describe, expect, it } from 'vitest';
import { API_ROUTES, isJsonRoute, JSON_ROUTE_HEADS, replySchemas, RUN_VIEW_SHAPE, type RecordShape, type RouteContract } from '@hoard/protocol/api';

/** A schema reduced to what a shape keeps: properties and items, a nullable record as the record. */
function shapeOf(schema: { properties?: Record<string, unknown>; items?: unknown; anyOf?: unknown[] }): RecordShape {
  const record = schema.properties ? schema : (schema.anyOf as (typeof schema)[] | undefined)?.find((s) => s.properties !== undefined);
  if (record?.properties) {
    const properties: Record<string, RecordShape> = {};
    for (const [key, field] of Object.entries(record.properties)) properties[key] = shapeOf(field as typeof schema);
    return { properties };
  }
  if (schema.items) return { items: shapeOf(schema.items as typeof schema) };
  return {};
}

describe('the client tables', () => {
  it('list every JSON route of API_ROUTES with its method, path and whether it takes a body, and no other route', () => {
    const routes = Object.values(API_ROUTES) as RouteContract[];
    const expected = Object.fromEntries(
      routes.filter((r) => isJsonRoute(r)).map((r) => [r.id, { id: r.id, method: r.method, path: r.path, ...(r.body !== undefined ? { body: true } : {}) }]),
    );
    expect(JSON_ROUTE_HEADS).toEqual(expected);
    // The binary routes have hand-written methods: none of them is in the table.
    expect(Object.keys(JSON_ROUTE_HEADS)).not.toContain('uploadBatch');
    expect(Object.keys(JSON_ROUTE_HEADS)).toContain('getRun');
  });

  it('RUN_VIEW_SHAPE names every field of the RunView schema, nested records and arrays too', () => {
    expect(RUN_VIEW_SHAPE).toEqual(shapeOf(replySchemas.RunView as Parameters<typeof shapeOf>[0]));
    expect(RUN_VIEW_SHAPE.properties?.targets?.items?.properties?.totals?.properties).toHaveProperty('bytesNew');
  });
});
