/**
 * What a request's schema cannot say, checked by its handler after the schema passed:
 * relations between fields, times that must parse, source specs that must parse.
 */
import { RequestError, type CommitRequest, type CreateRunRequest } from '@hoard/protocol';

/** A time a client wrote: anything Date.parse reads (ISO-8601, a date alone). */
export function checkTime(field: string, value: string | undefined): void {
  if (value !== undefined && Number.isNaN(Date.parse(value)))
    throw new RequestError('invalid_request', `${field} must be an ISO-8601 time; got ${JSON.stringify(value)}`);
}

export function checkCommit(request: CommitRequest): CommitRequest {
  checkTime('startedAt', request.startedAt);
  if (request.bytesRead > request.logicalBytes)
    throw new RequestError('invalid_request', `bytesRead (${request.bytesRead}) cannot exceed logicalBytes (${request.logicalBytes})`);
  return request;
}

/**
 * A run request is a backup of 1-64 sources, or a restore (no sources, and none of the
 * backup-only fields). `checkSource` parses one spec (parseSourceSpec).
 */
export function checkCreateRun(body: CreateRunRequest, checkSource: (spec: string) => void): CreateRunRequest & { sources: string[] } {
  if (body.restore) {
    if (body.sources !== undefined && body.sources.length > 0)
      throw new RequestError('invalid_request', 'a restore run has no sources; give restore or sources, not both');
    for (const key of ['store', 'hooks', 'full', 'bandwidth'] as const)
      if (body[key] !== undefined) throw new RequestError('invalid_request', `${key} does not apply to a restore run`);
    if (body.restore.snapshot !== undefined && body.restore.at !== undefined)
      throw new RequestError('invalid_request', 'restore: give snapshot or at, not both');
    checkTime('restore.at', body.restore.at);
    return { ...body, sources: [] };
  }
  const sources = body.sources ?? [];
  if (sources.length === 0) throw new RequestError('invalid_request', 'sources must be a list of 1-64 source specs');
  sources.forEach((spec, i) => {
    try {
      checkSource(spec);
    } catch (err) {
      throw new RequestError('invalid_source', `sources[${i}]: ${(err as Error).message}`);
    }
  });
  return { ...body, sources };
}
