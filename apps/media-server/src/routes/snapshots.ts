/** Snapshots: the list, a snapshot's bytes (checked on the way out), its chunk references. */
import {
  API_ROUTES as R,
  CONTENT_TYPE_BINARY,
  CONTENT_TYPE_RESTORE_FRAMES,
  MAX_CHUNK_REFS,
  RequestError,
  encodeRefs,
  type SnapshotRecord,
  type WireRef,
} from '@hoard/protocol';
import { IntegrityError, ObjectFormatError, restore, snapshotChunkRefs } from '@hoard/repository';
import { clientGone } from '../client-gone.js';
import type { Api } from '../http/api.js';
import { describeError } from '../http/errors.js';
import { FrameSink, ResponseSink } from '../http/restore-sinks.js';
import { restoreReadAccess } from '../restore-runs.js';
import type { MediaServer } from '../server.js';

export function snapshotRoutes(api: Api, server: MediaServer): void {
  const { catalog, repo, log } = server;

  api.json(R.listSnapshots, async ({ query, who }) => {
    if (who.kind === 'agent' && (query.job === undefined || (await catalog.getJob(query.job))?.agent !== who.name)) {
      throw new RequestError('forbidden', `agent ${who.name} may list only the snapshots of its own jobs (name one with ?job=)`);
    }
    const snapshots = await catalog.listSnapshots({
      job: query.job,
      source: query.source,
      since: isoTime('since', query.since),
      until: isoTime('until', query.until),
      newestFirst: true,
    });
    // Protection is a marker in the bucket (any server or CLI may set it): read it there.
    const marked = await repo.protectedSnapshots(query.job);
    return { snapshots: snapshots.map((s) => ({ ...(s as SnapshotRecord), protected: marked.has(s.key) })) };
  });

  api.json(R.setProtection, async ({ params, body, who }) => {
    if (!body.protected && who.kind !== 'admin')
      throw new RequestError(
        'forbidden',
        `a token of role ${who.kind} may protect snapshots but not lift a protection: that lets prune forget the snapshot (an admin token can)`,
      );
    const snapshot = await repo.findSnapshot(params.job, { id: params.id });
    if (body.protected) await repo.protectSnapshot(snapshot.key);
    else await repo.unprotectSnapshot(snapshot.key);
    log.info({ job: params.job, snapshot: snapshot.id, protected: body.protected }, body.protected ? 'snapshot protected' : 'snapshot protection lifted');
    return { job: params.job, id: snapshot.id, key: snapshot.key, protected: body.protected };
  });

  api.raw(R.restore, async ({ params, query: q, who, raw: req, res }) => {
    const { job } = params;
    const mayRead = await restoreReadAccess(catalog, who, job);
    const at = isoTime('at', q.at);
    const snapshot = await repo.findSnapshot(job, { id: q.id, at: at === undefined ? undefined : new Date(at), source: q.source });
    if (!mayRead(snapshot.id))
      throw new RequestError(
        'forbidden',
        `agent ${who.kind === 'agent' ? who.name : ''} may read only snapshot(s) of its restore run of job ${job}, not ${snapshot.id}`,
      );
    const total = snapshot.meta.logicalBytes;
    const offset = q.offset ?? 0;
    const length = q.length ?? total - offset;
    if (!Number.isSafeInteger(offset + length) || length < 0 || offset + length > total) {
      throw new RequestError('range_not_satisfiable', `range offset=${q.offset} length=${q.length} is outside snapshot ${snapshot.id} (${total} bytes)`);
    }
    const headers = {
      'x-hoard-snapshot': snapshot.id,
      'x-hoard-snapshot-key': snapshot.key,
      'x-hoard-started-at': snapshot.meta.startedAt,
      'x-hoard-source': encodeURIComponent(snapshot.meta.source.name),
      'x-hoard-source-kind': snapshot.meta.source.kind,
      'x-hoard-logical-bytes': String(total),
    };
    const frames = q.frames !== undefined;
    log.info({ job, snapshot: snapshot.id, offset, length, frames }, 'restore started');
    if (!frames) {
      res.writeHead(200, { ...headers, 'content-type': CONTENT_TYPE_BINARY, 'content-length': length });
      // restore() re-hashes every chunk and, for a whole stream, checks the stream hash
      // before finishing; on any mismatch the response is cut short (Api's raw error path).
      await restore(repo, snapshot, new ResponseSink(res), { range: { offset, length } });
      return;
    }
    // Framed: holes as counts, and the verdict at the end, also a failure after the last byte.
    res.writeHead(200, { ...headers, 'content-type': CONTENT_TYPE_RESTORE_FRAMES });
    const sink = new FrameSink(res);
    let result;
    try {
      result = await restore(repo, snapshot, sink, { range: { offset, length } });
    } catch (err) {
      if (clientGone(req, err) || res.destroyed) throw err;
      const { message } = describeError(err);
      log.error({ job, snapshot: snapshot.id, offset, length, err: (err as Error).message }, 'restore failed');
      server.metrics.restoreFailures.inc();
      await sink.fail({ error: message, code: err instanceof IntegrityError || err instanceof ObjectFormatError ? 'damaged' : 'internal' });
      return;
    }
    await sink.end({ bytes: result.bytesWritten, streamHashChecked: result.streamHashChecked });
  });

  /**
   * A snapshot's chunk references over a byte range, for an agent that refers to chunks
   * of its previous snapshot again (unchanged files) instead of reading them.
   */
  api.raw(R.snapshotChunks, async ({ params, query, who, res }) => {
    const { job, id } = params;
    if (who.kind === 'agent' && (await catalog.getJob(job))?.agent !== who.name)
      throw new RequestError('forbidden', `agent ${who.name} may not read job ${job}`);
    const snapshot = await repo.findSnapshot(job, { id });
    const { offset, length } = query;
    if (!Number.isSafeInteger(offset + length) || offset + length > snapshot.meta.logicalBytes) {
      throw new RequestError(
        'range_not_satisfiable',
        `range offset=${offset} length=${length} is outside snapshot ${snapshot.id} (${snapshot.meta.logicalBytes} bytes)`,
      );
    }
    const refs: WireRef[] = [];
    let first = offset;
    for await (const { offset: at, ref } of snapshotChunkRefs(repo, snapshot, offset, length, MAX_CHUNK_REFS)) {
      if (refs.length === 0) first = at;
      refs.push(ref);
    }
    const body = encodeRefs(refs);
    res.writeHead(200, { 'content-type': CONTENT_TYPE_BINARY, 'content-length': body.length, 'x-hoard-first-offset': String(first) });
    res.end(body);
  });
}

/** A time from the query as the catalog keeps times (ISO-8601 UTC); the message names the parameter. */
function isoTime(name: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (Number.isNaN(Date.parse(value))) throw new RequestError('invalid_request', `${name} must be an ISO-8601 time; got ${JSON.stringify(value)}`);
  return new Date(value).toISOString();
}
