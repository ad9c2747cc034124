/** Backup sessions: begin, fingerprint queries and batch uploads (binary, streamed), commit, abort. */
import { randomBytes } from 'node:crypto';
import { resolveChunker } from '@hoard/chunker';
import {
  API_ROUTES as R,
  CONTENT_TYPE_BINARY,
  MAX_QUERY_FINGERPRINTS,
  RequestError,
  checkQueryBody,
  chunkerToWire,
  encodeMissingBitmap,
  type BeginSessionResponse,
  type CommitResponse,
} from '@hoard/protocol';
import { compressionFrom, formatCompression, type SnapshotInfo } from '@hoard/repository';
import { BackupSession } from '../backup-session.js';
import type { Api } from '../http/api.js';
import { BodyReader, readBody, requireContentType, sendBinary, sendJson } from '../http-util.js';
import { policyJobs } from '../policy-scheduler.js';
import { snapshotRecord, type MediaServer } from '../server.js';
import { recordLateSnapshots } from '../run-results.js';
import { checkCommit } from './request-checks.js';

export function sessionRoutes(api: Api, server: MediaServer): void {
  const { catalog, sessions, metrics, log } = server;

  api.json(R.beginSession, async ({ body, who }) => {
    const job = await catalog.getJob(body.job);
    if (who.kind === 'agent') {
      if (!job)
        throw new RequestError(
          'forbidden',
          `job ${body.job} is not defined on this server; an admin defines it (\`hoard run --agent ${who.name} --job ${body.job} ...\`)`,
        );
      if (job.agent !== who.name)
        throw new RequestError('forbidden', `agent ${who.name} may not write job ${body.job}: it belongs to agent ${job.agent ?? '(none)'}`);
    }
    if (body.run !== undefined) {
      const run = await server.runs.get(body.run);
      if (who.kind === 'agent' && run.agent !== who.name) throw new RequestError('forbidden', `run ${body.run} belongs to agent ${run.agent}`);
      if (run.job !== body.job) throw new RequestError('invalid_request', `run ${body.run} is for job ${run.job}, not ${body.job}`);
      // A run the server ended (its lease passed, an admin cancelled it) takes no new sessions.
      if (run.state !== 'running')
        throw new RequestError('run_not_running', `run ${body.run} is ${run.state}, not running${run.error ? `: ${run.error}` : ''}`);
    }
    const store = await server.stores.forJob(body.job, job?.store);
    const policy = (await server.policies()).find((p) => policyJobs(p).includes(body.job));
    const chunker = store.store.chunking(body.chunking);
    const maxChunk = resolveChunker(chunker).maxSize;
    const parent = await server.repo.latestSnapshot(body.job, (s) => s.meta.source.name === body.source.name);
    const id = randomBytes(16).toString('hex');
    const session = new BackupSession(server.repo, {
      id,
      agent: who.kind === 'agent' ? who.name : 'admin',
      job: body.job,
      source: body.source,
      run: body.run,
      store,
      chunker,
      maxChunk,
      parent: parent?.key ?? null,
      verifyUploads: server.options.verifyUploads ?? true,
      now: () => server.now().getTime(),
    });
    sessions.add(session);
    const discovered = await catalog.addKnownSources(body.job, [body.source.name]).catch(() => [] as string[]);
    if (body.run !== undefined) await server.runs.addSession(body.run, id, discovered);
    await sessions.record(session);
    log.info({ session: id, job: body.job, source: body.source.name, store: store.store.name, discovered: discovered.length > 0 }, 'session started');
    const response: BeginSessionResponse = {
      session: id,
      store: {
        id: store.store.id,
        name: store.store.name,
        encrypted: store.store.encrypted,
        secrets: store.store.wireSecrets(),
        // A policy's store.compression applies to its jobs' new blobs (each blob records its
        // own codec, so one store may hold several); other jobs use the store record's.
        compression: formatCompression(policy ? compressionFrom(policy.store.compression, `policy ${policy.name}`) : store.store.compression),
      },
      chunker: chunkerToWire(chunker) as BeginSessionResponse['chunker'],
      maxChunk,
      limits: {
        queryFingerprints: MAX_QUERY_FINGERPRINTS,
        batchChunks: server.options.batchChunks ?? 4096,
        batchBytes: server.options.batchBytes ?? 16 * 1024 * 1024,
      },
      idleTimeoutMs: sessions.idleMs,
      parent: parent?.key ?? null,
    };
    if (parent) response.parentSnapshot = parentSnapshot(parent, store.store.id);
    return response;
  });

  api.json(R.listSessions, async ({ query }) => ({ sessions: await catalog.listSessions({ job: query.job, newestFirst: true, limit: query.limit ?? 100 }) }));

  api.raw(R.queryMissing, async ({ params, who, raw: req, res }) => {
    const session = sessions.get(params.id, who);
    requireContentType(req, CONTENT_TYPE_BINARY);
    const body = await readBody(req, MAX_QUERY_FINGERPRINTS * 32);
    checkQueryBody(body.length);
    session.lastActivity = Date.now();
    metrics.bytesReceived.inc(body.length);
    sendBinary(res, encodeMissingBitmap(session.missing(body)));
  });

  api.raw(R.uploadBatch, async ({ params, who, raw: req, res }) => {
    const session = sessions.get(params.id, who);
    requireContentType(req, CONTENT_TYPE_BINARY);
    const seq = params.seq;
    const result = await sessions.exclusive(session, async () => {
      // An upload that stalls (an agent gone without closing its connection) would keep the
      // session busy, and so unexpired and refusing the agent's retry, forever: after the
      // session's idle time without a byte, the request is cut.
      req.setTimeout(sessions.idleMs, () =>
        req.destroy(new RequestError('request_timeout', `batch ${seq} of session ${session.id} stalled: no bytes for ${Math.round(sessions.idleMs / 1000)} s`)),
      );
      const reader = new BodyReader(req);
      try {
        return await session.applyBatch(seq, reader);
      } finally {
        req.setTimeout(0);
        metrics.bytesReceived.inc(reader.bytesRead);
      }
    });
    metrics.blobs.inc({ outcome: 'stored' }, result.blobsStored);
    metrics.blobs.inc({ outcome: 'duplicate' }, result.blobsDuplicate);
    if (result.duplicate) req.resume();
    sendJson(res, 200, result);
  });

  api.json(R.commitSession, async ({ params, body, who }) => {
    const session = sessions.get(params.id, who);
    const request = checkCommit(body);
    const snapshot = await sessions.exclusive(session, async () => session.commit(request));
    session.state = 'committed';
    metrics.sessions.inc({ result: 'committed' });
    metrics.bytesNew.inc(session.totals.bytesNew);
    await catalog.putSnapshot({ ...snapshotRecord(snapshot), sessionId: session.id });
    await sessions.record(session);
    log.info({ session: session.id, job: session.init.job, snapshot: snapshot.id, ...session.totals }, 'snapshot committed');
    const response: CommitResponse = { snapshot: summary(snapshot), totals: session.totals, dedupRatio: session.dedupRatio() };
    session.committed = response;
    // The server may have ended this session's run while the commit's last writes were
    // under way (its lease passed): the snapshot is whole, and the run's record says so.
    if (session.init.run !== undefined) await recordLateSnapshots(catalog, server.runs, session.init.run);
    return response;
  });

  api.json(R.abortSession, async ({ params, who }) => {
    const session = sessions.get(params.id, who);
    await sessions.end(session, 'failed', 'abandoned by the agent');
    return { session: params.id, state: session.state };
  });
}

function parentSnapshot(parent: SnapshotInfo, storeId: string): NonNullable<BeginSessionResponse['parentSnapshot']> {
  return {
    id: parent.id,
    kind: parent.meta.source.kind,
    logicalBytes: parent.meta.logicalBytes,
    sameStore: parent.meta.store === storeId,
    ...(parent.meta.sourceStat ? { sourceStat: parent.meta.sourceStat } : {}),
  };
}

function summary(s: SnapshotInfo): CommitResponse['snapshot'] {
  return {
    id: s.id,
    key: s.key,
    job: s.meta.job,
    source: s.meta.source,
    startedAt: s.meta.startedAt,
    finishedAt: s.meta.finishedAt,
    logicalBytes: s.meta.logicalBytes,
    store: s.meta.store,
  };
}
