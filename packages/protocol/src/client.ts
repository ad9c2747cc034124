/**
 * HTTP client for the media server, shared by the agent and the `hoard` CLI, over HTTP/1.1
 * keep-alive. Errors are typed: ServerError carries the server's status and message;
 * ServerUnreachableError means no answer at all (worth a retry).
 *
 * The JSON calls go through node:http, not fetch: a `hoard` command is a process of its
 * own, and its first fetch loads and compiles undici (about 100 ms of CPU), then keeps
 * the process alive about 150 ms after the last answer. The typed methods come from the
 * routes' plain heads (api/route-heads.ts), so the client loads no schema library either.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { ErrorCode } from '@hoard/errors';
import { methodsFor } from './api/call.js';
import type { ApiMethods } from './api/methods.js';
import { JSON_ROUTE_HEADS } from './api/route-heads.js';
import { CONTENT_TYPE_BINARY, CONTENT_TYPE_JSON, REF_BYTES, WireFormatError, decodeRefs, type WireRef } from './wire.js';
import { CONTENT_TYPE_RESTORE_FRAMES, readRestoreFrames, RestoreStreamError, type RestoreEnd, type RestoreFrame } from './restore-frames.js';
import type {
  BatchResponse,
  BeginSessionRequest,
  BeginSessionResponse,
  CommitRequest,
  CommitResponse,
  FinishRunRequest,
  RunProgress,
  RunLeaseAnswer,
  RunProgressAnswer,
  RunView,
} from './messages.js';

/** Shared, never written: holes handed to readers that want plain bytes. */
const ZERO_BLOCK = new Uint8Array(1 << 20);

/** The server answered with an error status. */
export class ServerError extends Error {
  override readonly name = 'ServerError';
  constructor(
    readonly status: number,
    message: string,
    readonly body: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** No answer: connection refused or reset, DNS, TLS. */
export class ServerUnreachableError extends Error {
  override readonly name = 'ServerUnreachableError';
  readonly code: ErrorCode = 'server_unreachable';
}

/** The server's answer is not what this client can read (a server of another version?). */
export class AnswerFormatError extends WireFormatError {
  override readonly name = 'AnswerFormatError';
  override readonly code: ErrorCode = 'bad_answer';
}

/** The error for an answer with status >= 400: the server's message (`message` since error codes; `error` from servers before them). */
function answerError(status: number, statusText: string, text: string): ServerError {
  let parsed: Record<string, unknown> = {};
  try {
    const value: unknown = JSON.parse(text);
    if (value !== null && typeof value === 'object') parsed = value as Record<string, unknown>;
  } catch {
    // not JSON: keep the status alone
  }
  const message = typeof parsed.message === 'string' ? parsed.message : typeof parsed.error === 'string' ? parsed.error : `HTTP ${status} ${statusText}`.trim();
  return new ServerError(status, message, parsed);
}

export interface ClientOptions {
  /** http(s)://host:port */
  url: string;
  token: string;
}

export class HoardClient {
  readonly base: string;
  /**
   * The keep-alive sockets of the calls through node:http: the JSON calls, batch uploads
   * (fetch copies every piece of a streamed body) and downloads.
   */
  private readonly httpAgent: HttpAgent;

  constructor(private readonly options: ClientOptions) {
    let url: URL;
    try {
      url = new URL(options.url);
    } catch {
      throw new TypeError(`server URL ${JSON.stringify(options.url)} is not a URL; expected e.g. http://backup.example:8420`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`server URL ${options.url} must start with http:// or https://`);
    this.base = url.origin;
    this.httpAgent = url.protocol === 'https:' ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
  }

  /** One method per JSON route of the API, typed from its contract (api/methods.ts). */
  readonly api: ApiMethods = methodsFor(Object.values(JSON_ROUTE_HEADS), (route, path, body, signal) =>
    this.json(route.method, path, body, signal),
  ) as unknown as ApiMethods;

  get token(): string {
    return this.options.token;
  }

  async request(
    method: string,
    path: string,
    init: { json?: unknown; body?: Uint8Array | AsyncIterable<Uint8Array>; contentType?: string; signal?: AbortSignal } = {},
  ): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.options.token}` };
    let body: string | Uint8Array | AsyncIterable<Uint8Array> | undefined;
    if (init.json !== undefined) {
      headers['content-type'] = CONTENT_TYPE_JSON;
      body = JSON.stringify(init.json);
    } else if (init.body !== undefined) {
      headers['content-type'] = init.contentType ?? CONTENT_TYPE_BINARY;
      body = init.body;
    }
    let res: Response;
    try {
      res = await fetch(this.base + path, {
        method,
        headers,
        body,
        signal: init.signal,
        ...(body !== undefined && !(body instanceof Uint8Array) && typeof body !== 'string' ? { duplex: 'half' } : {}),
      } as RequestInit);
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err;
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new ServerUnreachableError(`cannot reach the media server at ${this.base}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
    }
    if (res.status >= 400) throw answerError(res.status, res.statusText, await res.text().catch(() => ''));
    return res;
  }

  /**
   * A GET whose body is large (a restore): through node:http, whose response yields the
   * socket's Buffers as they come; fetch's web streams cost a restore a third of a core.
   * Errors as request() throws them.
   */
  download(path: string, signal?: AbortSignal): Promise<IncomingMessage> {
    const url = new URL(path, this.base);
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = send(url, { method: 'GET', agent: this.httpAgent, signal, headers: { authorization: `Bearer ${this.options.token}` } });
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err.name === 'AbortError') reject(err);
        else reject(new ServerUnreachableError(`cannot reach the media server at ${this.base}: ${err.code ?? err.message}`));
      });
      req.on('response', (res: IncomingMessage) => {
        const status = res.statusCode ?? 500;
        if (status < 400) return resolve(res);
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('error', () => reject(new ServerError(status, `HTTP ${status}`)));
        res.on('end', () => {
          let parsed: Record<string, unknown> = {};
          try {
            parsed = JSON.parse(Buffer.concat(parts).toString('utf8')) as Record<string, unknown>;
          } catch {
            // not JSON: keep the status alone
          }
          reject(new ServerError(status, typeof parsed.error === 'string' ? parsed.error : `HTTP ${status} ${res.statusMessage ?? ''}`.trim(), parsed));
        });
      });
      req.end();
    });
  }

  /** A call with a JSON body (or none) and a JSON answer (or none: 204), through node:http. */
  async json<T>(method: string, path: string, json?: unknown, signal?: AbortSignal): Promise<T> {
    const body = json === undefined ? undefined : Buffer.from(JSON.stringify(json));
    const answer = await this.call(method, path, { body, contentType: CONTENT_TYPE_JSON, signal });
    const text = answer.body.toString('utf8');
    if (answer.status === 204 || text === '') return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new AnswerFormatError(`the answer to ${method} ${path.split('?')[0]} is not JSON: ${JSON.stringify(text.slice(0, 80))}`);
    }
  }

  /**
   * A call through node:http whose answer is read whole: the JSON calls and the agent's
   * binary ones (fingerprint queries, chunk lists). Not fetch: its first call loads undici
   * and compiles its HTTP parser to WebAssembly, and V8's optimizing tier for that parser
   * took ~30 MiB of scratch memory on a background thread, which glibc kept: an agent's
   * peak RSS went up by that much. An answer >= 400 is a ServerError.
   */
  private call(
    method: string,
    path: string,
    init: { body?: Uint8Array; contentType?: string; signal?: AbortSignal },
  ): Promise<{ status: number; headers: IncomingMessage['headers']; body: Buffer }> {
    const url = new URL(path, this.base);
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const headers: Record<string, string> = { authorization: `Bearer ${this.options.token}` };
    if (init.body !== undefined) {
      headers['content-type'] = init.contentType ?? CONTENT_TYPE_BINARY;
      headers['content-length'] = String(init.body.byteLength);
    }
    return new Promise((resolve, reject) => {
      const req = send(url, { method, agent: this.httpAgent, signal: init.signal, headers });
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err.name === 'AbortError') reject(err);
        else reject(new ServerUnreachableError(`cannot reach the media server at ${this.base}: ${err.code ?? err.message}`));
      });
      req.on('response', (res: IncomingMessage) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('error', (err: Error) => {
          if (err.name === 'AbortError') reject(err);
          else reject(new ServerUnreachableError(`the media server at ${this.base} broke off its answer: ${err.message}`));
        });
        res.on('end', () => {
          const status = res.statusCode ?? 500;
          const body = parts.length === 1 ? parts[0] : Buffer.concat(parts);
          if (status >= 400) return reject(answerError(status, res.statusMessage ?? '', body.toString('utf8')));
          resolve({ status, headers: res.headers, body });
        });
      });
      req.end(init.body);
    });
  }

  // --- agent calls -----------------------------------------------------------------------

  hello(info: { hostname: string; version: string }): Promise<{ agent: string }> {
    return this.api.agentHello({ body: info });
  }

  /**
   * The next run for this agent, or undefined after `waitSeconds`. `holding` lists the
   * runs this process is executing: the server fails the agent's other running runs at
   * once (a restarted agent no longer has them) instead of waiting for their leases.
   */
  work(waitSeconds: number, signal?: AbortSignal, holding?: readonly string[]): Promise<RunView | undefined> {
    return this.api.agentWork({ query: { wait: waitSeconds, holding: holding?.join(',') }, signal }) as Promise<RunView | undefined>;
  }

  /** Renews the lease of a running run; the answer's `cancel` asks the agent to stop it. */
  renewLease(run: string, signal?: AbortSignal): Promise<RunLeaseAnswer> {
    return this.api.renewLease({ params: { id: run }, body: {}, signal });
  }

  /** Reports progress; the answer's `cancel` asks the agent to stop the run. */
  runProgress(run: string, progress: RunProgress): Promise<RunProgressAnswer> {
    return this.api.runProgress({ params: { id: run }, body: progress });
  }

  finishRun(run: string, report: FinishRunRequest): Promise<RunView> {
    return this.api.finishRun({ params: { id: run }, body: report });
  }

  beginSession(request: BeginSessionRequest): Promise<BeginSessionResponse> {
    return this.api.beginSession({ body: request });
  }

  async missing(session: string, fingerprints: Uint8Array): Promise<Uint8Array> {
    const answer = await this.call('POST', `/v1/sessions/${session}/missing`, { body: fingerprints });
    return answer.body;
  }

  /**
   * Streams a batch, writing each piece as it comes and waiting when the socket is full.
   * `inMemory`: every piece is held in memory until the answer anyway (the agent's encoded
   * blobs), so the pieces are written without waiting for the socket to drain: its queue
   * holds references, not copies, and waiting after every blob cost an event-loop turn and
   * a small writev per blob (about 15% of the agent's CPU in `bench network`).
   */
  batch(session: string, seq: number, body: AsyncIterable<Uint8Array>, options: { inMemory?: boolean } = {}): Promise<BatchResponse> {
    const url = new URL(`/v1/sessions/${session}/batches/${seq}`, this.base);
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<BatchResponse>((resolve, reject) => {
      const req = send(url, {
        method: 'PUT',
        agent: this.httpAgent,
        headers: { authorization: `Bearer ${this.options.token}`, 'content-type': CONTENT_TYPE_BINARY },
      });
      let settled = false;
      const fail = (err: unknown): void => {
        if (settled) return;
        settled = true;
        req.destroy();
        reject(err);
      };
      req.on('error', (err: NodeJS.ErrnoException) =>
        fail(new ServerUnreachableError(`cannot reach the media server at ${this.base}: ${err.code ?? err.message}`)),
      );
      req.on('response', (res: IncomingMessage) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('error', (err) => fail(new ServerUnreachableError(`the media server at ${this.base} broke off its answer: ${err.message}`)));
        res.on('end', () => {
          let parsed: Record<string, unknown> = {};
          try {
            parsed = JSON.parse(Buffer.concat(parts).toString('utf8')) as Record<string, unknown>;
          } catch {
            // not JSON: the status says enough
          }
          if ((res.statusCode ?? 500) >= 400) {
            fail(new ServerError(res.statusCode ?? 500, typeof parsed.error === 'string' ? parsed.error : `HTTP ${res.statusCode}`, parsed));
          } else if (!settled) {
            settled = true;
            resolve(parsed as unknown as BatchResponse);
          }
        });
      });
      void (async () => {
        try {
          for await (const piece of body) {
            if (settled) return;
            if (!req.write(piece) && !options.inMemory) {
              // 'close' too: a request that fails while full never drains.
              await new Promise<void>((drained) => {
                const done = (): void => {
                  req.off('drain', done);
                  req.off('close', done);
                  drained();
                };
                req.on('drain', done);
                req.on('close', done);
              });
            }
          }
          req.end();
        } catch (err) {
          fail(err);
        }
      })();
    });
  }

  commit(session: string, request: CommitRequest): Promise<CommitResponse> {
    return this.api.commitSession({ params: { id: session }, body: request });
  }

  /**
   * References of a snapshot's chunks overlapping [offset, offset+length), at most
   * MAX_CHUNK_REFS of them; `first` is the stream offset of the first one.
   */
  async snapshotChunks(job: string, id: string, offset: number, length: number, signal?: AbortSignal): Promise<{ first: number; refs: WireRef[] }> {
    const answer = await this.call('GET', `/v1/jobs/${encodeURIComponent(job)}/snapshots/${encodeURIComponent(id)}/chunks?offset=${offset}&length=${length}`, {
      signal,
    });
    const body = answer.body;
    if (body.length % REF_BYTES !== 0)
      throw new AnswerFormatError(`chunk list answer of ${body.length} bytes is not a whole number of ${REF_BYTES}-byte references`);
    // Loaded here, not at start: the chunker (and its native hash) is start-up time for every CLI command.
    const { MAX_CHUNK_SIZE } = await import('@hoard/chunker');
    const first = answer.headers['x-hoard-first-offset'];
    return { first: Number(typeof first === 'string' ? first : offset), refs: decodeRefs(body, body.length / REF_BYTES, MAX_CHUNK_SIZE) };
  }

  /**
   * A snapshot's bytes, or a range of them (GET /v1/jobs/J/restore): the response with
   * its body unread. Raw unless `frames` (restore-frames.ts): a raw body is cut short
   * when the server finds damage, so its reader must compare what it got with
   * content-length; a framed body says so, and where the holes are.
   */
  restore(
    job: string,
    query: { id?: string; at?: Date; source?: string; offset?: number; length?: number; frames?: boolean },
    signal?: AbortSignal,
  ): Promise<Response> {
    const q = new URLSearchParams();
    if (query.id !== undefined) q.set('id', query.id);
    if (query.at !== undefined) q.set('at', query.at.toISOString());
    if (query.source !== undefined) q.set('source', query.source);
    if (query.offset !== undefined) q.set('offset', String(query.offset));
    if (query.length !== undefined) q.set('length', String(query.length));
    if (query.frames) q.set('frames', '1');
    return this.request('GET', `/v1/jobs/${encodeURIComponent(job)}/restore?${q}`, { signal });
  }

  /**
   * Bytes [offset, offset+length) of snapshot `id` as frames: data, and holes as zero
   * counts. Ends with the server's verdict: a chunk or the whole-stream hash failing its
   * check on the server is a RestoreStreamError, even after the last byte.
   */
  async *restoreFrames(job: string, id: string, offset: number, length: number, signal?: AbortSignal): AsyncGenerator<RestoreFrame, RestoreEnd> {
    const q = new URLSearchParams({ id, offset: String(offset), length: String(length), frames: '1' });
    const res = await this.download(`/v1/jobs/${encodeURIComponent(job)}/restore?${q}`, signal);
    if (res.headers['content-type'] !== CONTENT_TYPE_RESTORE_FRAMES) {
      res.destroy();
      throw new AnswerFormatError(`the server answered a framed restore with ${res.headers['content-type']} (a media server older than this client?)`);
    }
    let received = 0;
    let end: RestoreEnd;
    try {
      const frames = readRestoreFrames(res);
      for (;;) {
        const next = await frames.next();
        if (next.done) {
          end = next.value;
          break;
        }
        received += 'data' in next.value ? next.value.data.length : next.value.zeros;
        yield next.value;
      }
    } catch (err) {
      if (err instanceof RestoreStreamError) throw err;
      throw new ServerUnreachableError(
        `reading ${length} bytes at ${offset} of snapshot ${id} of job ${job} broke off after ${received}: ${(err as Error).message}`,
      );
    }
    if (received !== length || end.bytes !== length)
      throw new AnswerFormatError(`restore of ${length} bytes at ${offset} of snapshot ${id} of job ${job}: got ${received}, the server counted ${end.bytes}`);
    return end;
  }

  /**
   * Bytes [offset, offset+length) of snapshot `id`, holes as zeros: restoreFrames for
   * readers that want plain bytes (archive tables, one file of a directory snapshot).
   */
  async *restoreRange(job: string, id: string, offset: number, length: number, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
    for await (const frame of this.restoreFrames(job, id, offset, length, signal)) {
      if ('data' in frame) yield frame.data;
      else for (let left = frame.zeros; left > 0; left -= ZERO_BLOCK.length) yield ZERO_BLOCK.subarray(0, Math.min(left, ZERO_BLOCK.length));
    }
  }

  abortSession(session: string): Promise<unknown> {
    return this.api.abortSession({ params: { id: session } });
  }
}
