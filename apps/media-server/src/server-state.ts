/**
 * The server's own state as an object in the bucket (docs/format.md, "Server state"): the
 * catalog's definitions and bounded history (Catalog.exportRecords) as one JSON document,
 * sealed with the repository's blob codec under the `global` store's keys, so it is
 * encrypted exactly when the repository is, and checked on the way back like a chunk.
 *
 *   server/state-<T>-<r16>      T: the write time to the millisecond (20240501T020304.567Z),
 *                               r16: 8 random bytes in hex; the greatest key is the state
 *
 * Layout: magic `HRDSTATE` (8) | version 1 (u8) | codec byte (u8) | raw length (u32 LE) |
 * store id (16) | fingerprint (32) | the codec's stored bytes. The fingerprint is BLAKE3
 * of the JSON, keyed with the store's fingerprint key when the repository is encrypted; in
 * an encrypted repository it is also the AES-GCM associated data (BlobCodec).
 */
import { randomBytes } from 'node:crypto';
import type { CatalogRecords, RunRecord } from '@hoard/catalog';
import { GLOBAL_STORE, listAll, ObjectFormatError, type FingerprintStore, type ObjectStore, type Repository } from '@hoard/repository';

export const STATE_PREFIX = 'server/state-';
/** Where a state this catalog did not write is kept when the catalog's state replaces it. */
export const SUPERSEDED_PREFIX = 'server/superseded-';
const MAGIC = Buffer.from('HRDSTATE', 'latin1');
const VERSION = 1;
const HEADER_BYTES = 8 + 1 + 1 + 4 + 16 + 32;
const KEY = /^server\/state-(\d{8}T\d{6}\.\d{3}Z)-[0-9a-f]{16}$/;

/** What the bucket holds: the catalog's records and the repository they belong to. */
export interface ServerState extends CatalogRecords {
  format: 'hoard-server-state';
  version: 1;
  /** The repository's id (its config): a state is adopted only into its own repository. */
  repository: string;
}

export class ServerStateFormatError extends ObjectFormatError {
  override readonly name = 'ServerStateFormatError';
  constructor(key: string, reason: string) {
    super('server state', key, reason);
  }
}

/**
 * The catalog's records as the bucket keeps them: without what changes all the time and
 * means nothing to a new server (an agent's last contact, a running run's lease and its
 * progress report), so an agent's poll or a lease renewal does not make a new state.
 */
export function serverState(records: CatalogRecords, repository: string): ServerState {
  return {
    format: 'hoard-server-state',
    version: 1,
    repository,
    agents: records.agents.map(({ lastSeenAt: _seen, ...agent }) => agent),
    apiTokens: records.apiTokens,
    jobs: records.jobs,
    policies: records.policies,
    runs: records.runs.map(withoutLease),
    sessions: records.sessions,
    tasks: records.tasks,
  };
}

function withoutLease({ leaseExpiresAt: _expires, leaseRenewedAt: _renewed, ...run }: RunRecord): RunRecord {
  const result = run.result as Record<string, unknown> | undefined;
  if (result && typeof result === 'object' && !Array.isArray(result) && 'progress' in result) {
    const { progress: _progress, ...rest } = result;
    return { ...run, result: rest };
  }
  return run;
}

/** A new state key, later than `after` (the newest key known) even if the clock is not. */
export function nextStateKey(after: string | undefined, now = Date.now()): string {
  const last = after === undefined ? undefined : stateTime(after);
  const ms = Math.max(now, last === undefined ? 0 : Date.parse(last) + 1);
  return `${STATE_PREFIX}${new Date(ms).toISOString().replace(/[-:]/g, '')}-${randomBytes(8).toString('hex')}`;
}

/** When a state key says it was written (ISO), or undefined for a key of another shape. */
export function stateTime(key: string): string | undefined {
  const m = KEY.exec(key);
  if (!m) return undefined;
  const t = m[1]!;
  return `${t.slice(0, 4)}-${t.slice(4, 6)}-${t.slice(6, 8)}T${t.slice(9, 11)}:${t.slice(11, 13)}:${t.slice(13)}`;
}

/** The state objects in the bucket, oldest first (keys sort by time). Other keys are ignored. */
export async function listStateKeys(objects: ObjectStore): Promise<string[]> {
  const out: string[] = [];
  for await (const info of listAll(objects, STATE_PREFIX)) if (KEY.test(info.key)) out.push(info.key);
  return out.sort();
}

/** The JSON's fingerprint as the object's header names it (hex), read without decoding. */
export function headerFingerprint(bytes: Uint8Array): string | undefined {
  if (bytes.length < HEADER_BYTES || !MAGIC.equals(bytes.subarray(0, 8))) return undefined;
  return Buffer.from(bytes.subarray(30, 62)).toString('hex');
}

/** The store whose keys seal the state: `global`, which every repository has. */
export function stateStore(repo: Repository): Promise<FingerprintStore> {
  return repo.storeByName(GLOBAL_STORE);
}

/** The JSON of a state and its fingerprint under `store` (hex). */
export function stateBytes(state: ServerState, store: FingerprintStore): { raw: Buffer; fingerprint: string } {
  const raw = Buffer.from(JSON.stringify(state), 'utf8');
  return { raw, fingerprint: Buffer.from(store.fingerprinter.digest(raw)).toString('hex') };
}

/** The object for `raw` (a state's JSON): header and the codec's stored bytes. */
export async function encodeStateObject(raw: Uint8Array, fingerprint: string, store: FingerprintStore): Promise<Uint8Array> {
  const fp = Buffer.from(fingerprint, 'hex');
  const blob = await store.codec.encode(raw, fp);
  const header = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(header, 0);
  header.writeUInt8(VERSION, 8);
  header.writeUInt8(blob.codec, 9);
  header.writeUInt32LE(blob.rawLength, 10);
  Buffer.from(store.id, 'hex').copy(header, 14);
  fp.copy(header, 30);
  return Buffer.concat([header, blob.stored]);
}

/**
 * Reads a state object: the header, then the codec (AES-GCM in an encrypted repository,
 * LZ4, the length), the fingerprint of the JSON, the JSON's shape. ServerStateFormatError
 * for anything that does not hold.
 */
export async function decodeStateObject(key: string, bytes: Uint8Array, repo: Repository): Promise<ServerState> {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < HEADER_BYTES || !MAGIC.equals(b.subarray(0, 8))) throw new ServerStateFormatError(key, 'no HRDSTATE header');
  const version = b.readUInt8(8);
  if (version !== VERSION) throw new ServerStateFormatError(key, `version ${version}; this hoard reads version ${VERSION}: upgrade hoard`);
  const codec = b.readUInt8(9);
  const rawLength = b.readUInt32LE(10);
  const storeId = b.subarray(14, 30).toString('hex');
  const fingerprint = b.subarray(30, 62);
  // Only `global` seals a state, and in an encrypted repository only with its keys: a
  // store record without a key file planted next to it must not make a state readable.
  // (A wrong passphrase is its own error, not damage: not caught.)
  const store = await stateStore(repo);
  if (store.id !== storeId) throw new ServerStateFormatError(key, `it names store ${storeId} as its sealer, but the ${GLOBAL_STORE} store is ${store.id}`);
  if (repo.encrypted && !store.encrypted) throw new ServerStateFormatError(key, `the repository is encrypted but its ${GLOBAL_STORE} store has no key file`);
  let raw: Uint8Array;
  try {
    raw = await store.codec.decode(b.subarray(HEADER_BYTES), { codec, rawLength }, fingerprint, (data) => store.fingerprinter.digest(data));
  } catch (err) {
    throw new ServerStateFormatError(key, (err as Error).message);
  }
  let state: unknown;
  try {
    state = JSON.parse(Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('utf8'));
  } catch (err) {
    throw new ServerStateFormatError(key, `not JSON: ${(err as Error).message}`);
  }
  const s = state as Partial<ServerState> | null;
  if (s?.format !== 'hoard-server-state' || s.version !== 1 || typeof s.repository !== 'string')
    throw new ServerStateFormatError(key, 'not a hoard-server-state document of version 1');
  for (const field of ['agents', 'apiTokens', 'jobs', 'policies', 'runs', 'sessions', 'tasks'] as const) {
    if (!Array.isArray(s[field])) throw new ServerStateFormatError(key, `${field} is not a list`);
  }
  return s as ServerState;
}

/** "2 agents, 1 API token, ..." for messages. */
export function describeState(state: CatalogRecords): string {
  const n = (count: number, one: string, many = `${one}s`) => `${count} ${count === 1 ? one : many}`;
  return [
    n(state.agents.filter((a) => a.revokedAt === undefined).length, 'agent'),
    n(state.apiTokens.length, 'API token'),
    n(state.jobs.length, 'job'),
    n(state.policies.length, 'policy', 'policies'),
    n(state.runs.length, 'run'),
    n(state.tasks.length, 'task'),
  ].join(', ');
}
