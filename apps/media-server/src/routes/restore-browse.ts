/**
 * Restore from a browser (the console, issue 17): which snapshot a time picks, a
 * directory snapshot's tree by pages, and downloads. Every byte of a download comes out
 * of the restore pipeline, which checks every chunk (and, for a whole snapshot, the
 * stream hash); a failed check cuts the response short of its Content-Length, so the
 * browser shows a failed download and never keeps wrong bytes.
 */
import { basename } from 'node:path';
import { API_ROUTES as R, RequestError, type PickedSnapshot, type TreeEntry } from '@hoard/protocol';
import { archivePath, ArchiveEntryNotFoundError, restore, type DirEntry, type Repository, type SnapshotInfo } from '@hoard/repository';
import { clientGone } from '../client-gone.js';
import type { Api } from '../http/api.js';
import { ResponseSink } from '../http/restore-sinks.js';
import { ArchiveTableCache, baseName } from '../restore-browse/archive-tables.js';
import { contentDisposition } from '../restore-browse/content-disposition.js';
import { planTar, TarSink } from '../restore-browse/tar-download.js';
import { VerdictHoldingSink } from '../restore-browse/verdict-sink.js';
import type { MediaServer } from '../server.js';

const DEFAULT_PAGE = 200;

export function restoreBrowseRoutes(api: Api, server: MediaServer): void {
  const { repo, log } = server;
  const tables = new ArchiveTableCache(repo);

  api.json(R.pickSnapshot, async ({ params, query }) => {
    const at = query.at === undefined ? undefined : isoTime(query.at);
    // The rule of `hoard restore --at`: Repository.findSnapshot, the same call.
    const snapshot = await repo.findSnapshot(params.job, { at: at === undefined ? undefined : new Date(at), source: query.source });
    return {
      ...(at !== undefined ? { at } : {}),
      snapshot: picked(params.job, snapshot),
      rule: at !== undefined ? `the newest snapshot that started at or before ${at}` : 'the newest snapshot',
    };
  });

  api.json(R.browseSnapshot, async ({ params, query }) => {
    const snapshot = await directorySnapshot(repo, params.job, params.id);
    const tree = await tables.tree(snapshot);
    const path = archivePath(query.path ?? '');
    const dir = tree.entry(path);
    if (!dir) throw new ArchiveEntryNotFoundError(`${query.path} is not in snapshot ${snapshot.id} (paths are relative to the directory that was backed up)`);
    if (dir.type !== 'dir')
      throw new RequestError(
        'invalid_request',
        `${query.path} is a ${dir.type === 'file' ? 'file' : 'symlink'} in snapshot ${snapshot.id}, not a directory: download it instead`,
      );
    const children = tree.childrenOf(path);
    const start = query.cursor === undefined ? 0 : cursorValue(query.cursor, children.length);
    const limit = query.limit ?? DEFAULT_PAGE;
    const page = children.slice(start, start + limit);
    const entries = page.map((i) => treeEntry(tree.index.entries[i]!, tree.childrenOf(tree.index.entries[i]!.path).length));
    const end = start + page.length;
    return {
      snapshot: snapshot.id,
      path: path.toString('utf8'),
      total: children.length,
      entries,
      ...(end < children.length ? { next: String(end) } : {}),
    };
  });

  api.raw(R.downloadSnapshot, async ({ params, query, raw: req, res }) => {
    const snapshot = await repo.findSnapshot(params.job, { id: params.id });
    const kind = snapshot.meta.source.kind;
    const context = { job: params.job, snapshot: snapshot.id, path: query.path };
    const fail = (err: unknown): never => {
      // Named in the log (the browser only sees a cut download); the raw error path cuts the connection.
      if (!clientGone(req, err)) {
        server.metrics.restoreFailures.inc();
        log.error({ ...context, err: (err as Error).message }, 'download failed: the response was cut short');
      }
      throw err;
    };

    if (kind !== 'directory') {
      if (query.path !== undefined)
        throw new RequestError(
          'invalid_request',
          `path picks a file out of a directory snapshot, but snapshot ${snapshot.id} of job ${params.job} is a ${kind} snapshot`,
        );
      const total = snapshot.meta.logicalBytes;
      const name = `${params.job}-${snapshot.id}-${basename(snapshot.meta.source.name) || 'snapshot'}`;
      res.writeHead(200, headers(snapshot, total, contentDisposition(name), 'application/octet-stream'));
      log.info({ ...context, bytes: total }, 'download started');
      // The whole stream: every chunk checked, and the last byte held back until the stream hash is.
      await restore(repo, snapshot, new VerdictHoldingSink(res)).catch(fail);
      return;
    }

    const tree = await tables.tree(snapshot);
    const path = archivePath(query.path ?? '');
    const entry = tree.entry(path);
    if (!entry) throw new ArchiveEntryNotFoundError(`${query.path} is not in snapshot ${snapshot.id} (paths are relative to the directory that was backed up)`);

    if (entry.type === 'file' && query.format !== 'tar') {
      res.writeHead(200, headers(snapshot, entry.size, contentDisposition(baseName(entry.path).toString('utf8')), 'application/octet-stream'));
      log.info({ ...context, bytes: entry.size }, 'download started');
      if (entry.size === 0) {
        res.end();
        return;
      }
      await restore(repo, snapshot, new ResponseSink(res), { range: { offset: entry.offset, length: entry.size } }).catch(fail);
      return;
    }
    if (entry.type === 'symlink' && query.format === 'raw')
      throw new RequestError('invalid_request', `${query.path} is a symlink in snapshot ${snapshot.id}; download it with format=tar (or its target)`);

    const top = entry.path.equals(Buffer.from('.')) ? Buffer.from(`${params.job}-${snapshot.id}`) : baseName(entry.path);
    const plan = planTar(tree.subtree(entry.path), top);
    res.writeHead(200, headers(snapshot, plan.bytes, contentDisposition(`${top.toString('utf8')}.tar`), 'application/x-tar'));
    log.info({ ...context, bytes: plan.bytes, entries: plan.items.length }, 'download started (tar)');
    // The whole tree: the tar's end blocks are written by finish(), after the stream-hash check.
    const whole = entry.path.equals(Buffer.from('.'));
    const sink = new TarSink(plan, new ResponseSink(res), whole ? 0 : (plan.range?.offset ?? 0));
    if (whole) await restore(repo, snapshot, sink).catch(fail);
    else if (plan.range) await restore(repo, snapshot, sink, { range: plan.range }).catch(fail);
    else await sink.finish();
  });
}

function headers(snapshot: SnapshotInfo, length: number, disposition: string, type: string): Record<string, string | number> {
  return {
    'content-type': type,
    'content-length': length,
    'content-disposition': disposition,
    'x-hoard-snapshot': snapshot.id,
    'cache-control': 'no-store',
  };
}

async function directorySnapshot(repo: Repository, job: string, id: string): Promise<SnapshotInfo> {
  const snapshot = await repo.findSnapshot(job, { id });
  if (snapshot.meta.source.kind !== 'directory')
    throw new RequestError(
      'invalid_request',
      `snapshot ${snapshot.id} of job ${job} is a ${snapshot.meta.source.kind} snapshot: only directory snapshots have a tree to browse (download it whole)`,
    );
  return snapshot;
}

function picked(job: string, s: SnapshotInfo): PickedSnapshot {
  return {
    job,
    id: s.id,
    key: s.key,
    source: { name: s.meta.source.name, kind: s.meta.source.kind },
    startedAt: s.meta.startedAt,
    finishedAt: s.meta.finishedAt,
    logicalBytes: s.meta.logicalBytes,
  };
}

function treeEntry(e: DirEntry, children: number): TreeEntry {
  const path = e.path.toString('utf8');
  return {
    name: baseName(e.path).toString('utf8'),
    path,
    type: e.type,
    size: e.size,
    mode: e.mode,
    mtime: new Date(Number(e.mtimeNs / 1_000_000n)).toISOString(),
    ...(e.type === 'symlink' && e.target ? { target: e.target.toString('utf8') } : {}),
    ...(e.type === 'dir' ? { children } : {}),
  };
}

function cursorValue(cursor: string, total: number): number {
  const n = /^\d{1,12}$/.test(cursor) ? Number(cursor) : Number.NaN;
  if (!Number.isSafeInteger(n) || n > total)
    throw new RequestError('invalid_request', `cursor ${JSON.stringify(cursor)} is not one this listing gave out (the \`next\` of the previous page)`);
  return n;
}

function isoTime(value: string): string {
  if (Number.isNaN(Date.parse(value))) throw new RequestError('invalid_request', `at must be an ISO-8601 time; got ${JSON.stringify(value)}`);
  return new Date(value).toISOString();
}
