/**
 * An HTTP proxy in front of the test run's S3 server that injects faults, deterministically:
 * the Nth request matching a rule (or every k-th one) is answered 500/503, has its
 * connection reset before or after the request reached the server (the write did not or
 * did land), is delayed, or is held until the test releases or drops it (a test can
 * SIGKILL a process while its request is pending). Everything else is forwarded unchanged,
 * streaming.
 *
 * SigV4 signs the Host header. The client is pointed at the proxy (`endpoint: proxy.url`,
 * path style), so it signs the proxy's host; the proxy forwards the request to the real
 * server with the Host header it received, and the server checks the signature against
 * that header, so the signature holds without the proxy knowing any key. `Expect:
 * 100-continue` is answered by the proxy itself (node does that) and not forwarded; it is
 * not a signed header.
 */
import { EventEmitter } from 'node:events';
import { Agent, createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What a matching request gets. */
export type FaultAction =
  /** Answered with this status and an S3 error body; the request never reaches the server. */
  | { kind: 'status'; status: 500 | 503 }
  /** The connection is reset before anything reaches the server: the write did not land. */
  | { kind: 'reset-before' }
  /** Forwarded whole and answered by the server, then the connection is reset: the write landed, the answer is lost. */
  | { kind: 'reset-after' }
  /** Forwarded after this long. */
  | { kind: 'delay'; ms: number }
  /**
   * Paused (nothing forwarded) until the test calls release() or drop() on the HeldRequest
   * the proxy hands it (`nextHold`). `after: true` forwards first and holds the server's
   * answer instead (the write has landed).
   */
  | { kind: 'hold'; after?: boolean };

export interface FaultRule {
  /** HTTP method to match; any when absent. */
  method?: string;
  /** Tested against the object key (the path after the bucket, decoded, with any store prefix); any when absent. */
  key?: RegExp;
  /** Tested against the query string, decoded (a LIST names its prefix there: `list-type=2&prefix=p/gc/condemned/`); any when absent. */
  query?: RegExp;
  /** Fire on the nth matching request only (1-based). */
  nth?: number;
  /** Fire on every k-th matching request (k, 2k, ...): a fixed fault rate. */
  every?: number;
  action: FaultAction;
}

/** A request the proxy holds: the test decides its fate. */
export interface HeldRequest {
  method: string;
  key: string;
  /** Forward it (or, held after, pass the server's answer on). */
  release(): void;
  /** Reset the connection. */
  drop(): void;
}

/** One request as the proxy saw it. */
export interface ProxiedRequest {
  method: string;
  key: string;
  query: string;
  /** The fault injected, or 'forwarded'. */
  outcome: FaultAction['kind'] | 'forwarded';
}

interface ActiveRule extends FaultRule {
  matches: number;
  fired: number;
}

export class S3FaultProxy {
  readonly url: string;
  /** Every request seen, in arrival order. */
  readonly log: ProxiedRequest[] = [];
  readonly #server: Server;
  readonly #target: URL;
  readonly #agent = new Agent({ keepAlive: true });
  #rules: ActiveRule[] = [];
  readonly #holds: HeldRequest[] = [];
  readonly #events = new EventEmitter();

  private constructor(server: Server, target: URL) {
    this.#server = server;
    this.#target = target;
    const { port } = server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}`;
  }

  /** Starts a proxy on a free loopback port in front of `target` (e.g. s3TestServer().endpoint). */
  static async start(target: string): Promise<S3FaultProxy> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    const proxy = new S3FaultProxy(server, new URL(target));
    server.on('request', (req, res) => proxy.#handle(req, res));
    return proxy;
  }

  /** Replaces the rules (and their counters). */
  setRules(rules: FaultRule[]): void {
    this.#rules = rules.map((rule) => ({ ...rule, matches: 0, fired: 0 }));
  }

  /** How often each current rule fired, in rule order. */
  fired(): number[] {
    return this.#rules.map((rule) => rule.fired);
  }

  /** The next request a hold rule pauses (one already held and not yet taken comes first). */
  nextHold(timeoutMs = 60_000): Promise<HeldRequest> {
    const waiting = this.#holds.shift();
    if (waiting) return Promise.resolve(waiting);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#events.off('held', onHeld);
        reject(new Error(`no request was held within ${timeoutMs} ms; seen: ${this.log.map((r) => `${r.method} ${r.key}`).join(', ')}`));
      }, timeoutMs);
      const onHeld = (): void => {
        clearTimeout(timer);
        resolve(this.#holds.shift()!);
      };
      this.#events.once('held', onHeld);
    });
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(resolve));
    this.#agent.destroy();
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    // A client killed mid-request (the tests SIGKILL them) must not take the proxy down.
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const key = objectKey(url);
    const query = decodeURIComponent(url.slice(url.indexOf('?') + 1 || url.length));
    const action = this.#match(method, key, query);
    this.log.push({ method, key, query, outcome: action?.kind ?? 'forwarded' });
    switch (action?.kind) {
      case undefined:
        this.#forward(req, res);
        return;
      case 'status':
        req.resume();
        req.once('end', () => answerError(res, action.status));
        return;
      case 'reset-before':
        req.socket.destroy();
        return;
      case 'reset-after':
        this.#forward(req, res, (answer) => {
          answer.resume();
          answer.once('end', () => req.socket.destroy());
        });
        return;
      case 'delay':
        req.pause();
        setTimeout(() => this.#forward(req, res), action.ms);
        return;
      case 'hold': {
        req.pause();
        const hold = (release: () => void): void => {
          this.#holds.push({ method, key, release, drop: () => req.socket.destroy() });
          this.#events.emit('held');
        };
        if (action.after) this.#forward(req, res, (answer) => hold(() => pipeAnswer(answer, res)));
        else hold(() => this.#forward(req, res));
        return;
      }
    }
  }

  #match(method: string, key: string, query: string): FaultAction | undefined {
    for (const rule of this.#rules) {
      if (rule.method !== undefined && rule.method !== method) continue;
      if (rule.key !== undefined && !rule.key.test(key)) continue;
      if (rule.query !== undefined && !rule.query.test(query)) continue;
      rule.matches++;
      const fires = rule.nth !== undefined ? rule.matches === rule.nth : rule.every !== undefined ? rule.matches % rule.every === 0 : true;
      if (!fires) continue;
      rule.fired++;
      return rule.action;
    }
    return undefined;
  }

  /** Sends the request on, unchanged but for hop-by-hop headers; `onAnswer` takes the server's answer instead of passing it on. */
  #forward(req: IncomingMessage, res: ServerResponse, onAnswer: (answer: IncomingMessage) => void = (answer) => pipeAnswer(answer, res)): void {
    const headers = { ...req.headers };
    delete headers.expect;
    delete headers.connection;
    delete headers['keep-alive'];
    const upstream = httpRequest({
      agent: this.#agent,
      host: this.#target.hostname,
      port: this.#target.port,
      method: req.method,
      path: req.url,
      headers,
    });
    upstream.on('response', onAnswer);
    upstream.on('error', () => req.socket.destroy());
    req.on('error', () => upstream.destroy());
    req.pipe(upstream);
    req.resume();
  }
}

function pipeAnswer(answer: IncomingMessage, res: ServerResponse): void {
  res.writeHead(answer.statusCode ?? 502, answer.headers);
  answer.pipe(res);
}

function answerError(res: ServerResponse, status: 500 | 503): void {
  const code = status === 503 ? 'ServiceUnavailable' : 'InternalError';
  const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>injected by the test's fault proxy</Message></Error>`;
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** `/bucket/some/key?query` -> `some/key` (path-style requests). */
function objectKey(url: string): string {
  const path = url.split('?', 1)[0]!;
  const slash = path.indexOf('/', 1);
  return slash < 0 ? '' : decodeURIComponent(path.slice(slash + 1));
}
