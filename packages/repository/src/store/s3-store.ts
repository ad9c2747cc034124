import {
  CreateBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  PutObjectCommand,
  PutObjectRetentionCommand,
  S3Client,
  type BucketLocationConstraint,
  type GetObjectCommandOutput,
} from '@aws-sdk/client-s3';
import type { ErrorCode } from '@hoard/errors';
import { mapLimit } from '../map-limit.js';
import { retrying } from '../retry.js';
import { EnvironmentError, InvalidKeyError, ObjectNotFoundError, ObjectStoreError, RangeOutOfBoundsError, type StoreOperation } from './errors.js';
import { checkListArguments, validateKey } from './keys.js';
import type { ByteRange, ListOptions, ListPage, ObjectInfo, ObjectStore, StoreRetention } from './object-store.js';
import { describeS3Error, environmentCodeOfS3Error, errorName, httpStatus, type S3ErrorContext } from './s3-errors.js';
import { resolveRetryPolicy, S3RetryStrategy, type S3RetryPolicy } from './s3-retry.js';
import { formatS3Url, parseS3Url, S3ConfigError, validateBucketName, validateStorePrefix, type S3Url } from './s3-url.js';

export { parseS3Url, S3ConfigError, type S3Url } from './s3-url.js';
export { DEFAULT_S3_RETRY_POLICY, type S3RetryPolicy } from './s3-retry.js';

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface S3ObjectStoreOptions {
  /** `s3://bucket/prefix` (see parseS3Url); or give `bucket` and `prefix` instead. */
  url?: string;
  bucket?: string;
  /** Objects are stored as `prefix/key`; '' (the default) for the bucket's root. */
  prefix?: string;
  /**
   * S3-compatible server, e.g. `http://127.0.0.1:7480`. Default: HOARD_S3_ENDPOINT,
   * AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, else AWS's endpoint for the region.
   */
  endpoint?: string;
  /** Default: AWS_REGION, AWS_DEFAULT_REGION, else 'us-east-1'. */
  region?: string;
  /** `endpoint/bucket/key` rather than `bucket.endpoint/key`. Default: true when an endpoint is set. */
  forcePathStyle?: boolean;
  /**
   * Default: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN) when set,
   * else the SDK's default chain (shared config and credentials files, SSO, instance role).
   */
  credentials?: S3Credentials;
  retry?: Partial<S3RetryPolicy>;
  /** Give up connecting after this long (then retried). Default 10 s. */
  connectTimeoutMs?: number;
  /** Fail a request whose connection is silent this long (then retried). Default 60 s. */
  idleTimeoutMs?: number;
  /** Where the defaults above are read from. Default: process.env. */
  env?: Readonly<Record<string, string | undefined>>;
  /** open() only: create the bucket if it does not exist. */
  create?: boolean;
  /** open() with `create` only: a bucket it creates has Object Lock (and so versioning) enabled. */
  objectLock?: boolean;
}

const DEFAULT_REGION = 'us-east-1';
/** S3 returns at most 1000 keys per ListObjectsV2 and deletes at most 1000 per DeleteObjects. */
const S3_PAGE_MAX = 1000;
/** DeleteObjects batches in flight at once. */
const DELETE_CONCURRENCY = 4;
/** open() should say "cannot reach" in a second or two, not after the full retry budget. */
const OPEN_MAX_ATTEMPTS = 3;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
const DAY_MS = 24 * 3600_000;

interface ResolvedSettings {
  bucket: string;
  prefix: string;
  endpoint: string | undefined;
  region: string;
  forcePathStyle: boolean;
  credentials: S3Credentials | undefined;
  retry: S3RetryPolicy;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
}

/**
 * An ObjectStore in an S3 bucket (AWS or a compatible server such as Ceph RGW or MinIO):
 * object `k` is the S3 object `prefix/k`. putIfAbsent is a PutObject with
 * `If-None-Match: *`, so the server decides "absent" atomically. See docs/storage.md.
 */
export class S3ObjectStore implements ObjectStore {
  readonly location: string;
  readonly bucket: string;
  /** '' or a path without a trailing '/'. */
  readonly prefix: string;
  /** The configured endpoint; undefined means AWS. */
  readonly endpoint: string | undefined;
  readonly region: string;
  readonly #client: S3Client;
  readonly #settings: ResolvedSettings;
  /** What goes before every key: '' or `prefix/`. */
  readonly #keyPrefix: string;
  readonly #errorContext: S3ErrorContext;
  /** Set by applyRetention: the bucket has Object Lock, so it is versioned (see #putVersioned). */
  #retention: StoreRetention | undefined;
  /**
   * Ranged GETs a restore keeps in flight: one GET is bound by its round trip and one
   * connection's window, so several overlap (PBS and rclone use 8-16 as well).
   */
  readonly readConcurrency = 12;

  constructor(options: S3ObjectStoreOptions) {
    const settings = resolveSettings(options);
    this.#settings = settings;
    this.bucket = settings.bucket;
    this.prefix = settings.prefix;
    this.endpoint = settings.endpoint;
    this.region = settings.region;
    this.location = formatS3Url(settings);
    this.#keyPrefix = settings.prefix === '' ? '' : `${settings.prefix}/`;
    this.#errorContext = {
      bucket: settings.bucket,
      endpoint: settings.endpoint ?? `the AWS S3 endpoint of region ${settings.region}`,
      region: settings.region,
    };
    this.#client = makeClient(settings, settings.retry);
  }

  /**
   * Opens the store, checking that the bucket exists and the credentials are accepted, so
   * that a typo or a wrong key fails here with a clear message rather than at the first
   * upload. With `create: true` a missing bucket is created.
   */
  static async open(options: S3ObjectStoreOptions): Promise<S3ObjectStore> {
    const store = new S3ObjectStore(options);
    try {
      await store.#checkBucket(options.create === true, options.objectLock === true);
    } catch (err) {
      store.close();
      throw err;
    }
    return store;
  }

  /** Releases the HTTP connections. The store must not be used afterwards. */
  close(): void {
    this.#client.destroy();
  }

  async putIfAbsent(key: string, data: Uint8Array): Promise<boolean> {
    validateKey(key);
    if (!(data instanceof Uint8Array)) throw new TypeError(`putIfAbsent(${key}): data must be a Uint8Array`);
    if (this.#retention) return this.#putVersioned(key, data, this.#retention);
    try {
      await this.#client.send(this.#putCommand(key, data));
      return true;
    } catch (err) {
      // S3 is strongly consistent: a 412 means a complete object is there. (A retried PUT
      // whose first attempt did land also ends here; the object is then ours, with the
      // same bytes, and `false` only misreports who wrote it.)
      if (errorName(err) === 'PreconditionFailed' || httpStatus(err) === 412) return false;
      throw this.#wrap('put', key, err);
    }
  }

  async get(key: string, range?: ByteRange): Promise<Uint8Array> {
    validateKey(key);
    try {
      return range === undefined ? await this.#getWhole(key) : await this.#getRange(key, range);
    } catch (err) {
      throw this.#wrap('get', key, err);
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    validateKey(key);
    try {
      const size = await this.#size(key);
      return size === undefined ? undefined : { key, size };
    } catch (err) {
      throw this.#wrap('head', key, err);
    }
  }

  async list(prefix: string, options: ListOptions = {}): Promise<ListPage> {
    const limit = checkListArguments(prefix, options);
    const after = options.after;
    try {
      return await this.#list(prefix, after, Math.min(limit, S3_PAGE_MAX), options.times === true);
    } catch (err) {
      throw this.#wrap('list', prefix, err);
    }
  }

  async deleteMany(keys: string[]): Promise<void> {
    // All keys are checked before anything is deleted: a bad key is a caller bug.
    for (const key of keys) validateKey(key);
    const unique = [...new Set(keys)];
    if (this.#retention) {
      await mapLimit(unique, DELETE_CONCURRENCY, (key) => this.#deleteAllVersions(key));
      return;
    }
    const batches: string[][] = [];
    for (let i = 0; i < unique.length; i += S3_PAGE_MAX) batches.push(unique.slice(i, i + S3_PAGE_MAX));
    await mapLimit(batches, DELETE_CONCURRENCY, (batch) => this.#deleteBatch(batch));
  }

  // --- Object Lock (docs/storage.md, "Object Lock") ---

  applyRetention(retention: StoreRetention): void {
    if (!(retention.days > 0)) throw new RangeError(`object lock retention must be a positive number of days, got ${retention.days}`);
    this.#retention = retention;
  }

  /** Whether the bucket was created with Object Lock enabled (only then can objects be locked). */
  async objectLockEnabled(): Promise<boolean> {
    try {
      const response = await this.#client.send(new GetObjectLockConfigurationCommand({ Bucket: this.bucket }));
      return response.ObjectLockConfiguration?.ObjectLockEnabled === 'Enabled';
    } catch (err) {
      if (errorName(err) === 'ObjectLockConfigurationNotFoundError' || httpStatus(err) === 404) return false;
      throw this.#wrap('head', '', err);
    }
  }

  async lockedUntil(key: string): Promise<Date | undefined> {
    validateKey(key);
    try {
      const response = await this.#client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.#s3Key(key) }));
      const until = response.ObjectLockRetainUntilDate;
      return until !== undefined && until.getTime() > Date.now() ? until : undefined;
    } catch (err) {
      if (httpStatus(err) === 404) return undefined;
      throw this.#wrap('head', key, err);
    }
  }

  async extendLock(key: string, until: Date): Promise<boolean> {
    validateKey(key);
    const retention = this.#retention;
    if (!retention) return false;
    try {
      await this.#client.send(
        new PutObjectRetentionCommand({ Bucket: this.bucket, Key: this.#s3Key(key), Retention: { Mode: retention.mode, RetainUntilDate: until } }),
      );
      return true;
    } catch (err) {
      if (httpStatus(err) === 404) return false;
      // Already locked beyond `until` (a clock ahead of ours extended it): nothing to do.
      if (errorName(err) === 'AccessDenied' && /shorten/i.test((err as Error).message)) return false;
      throw this.#wrap('put', key, err);
    }
  }

  async hiddenKeys(prefix: string): Promise<string[]> {
    checkListArguments(prefix, {});
    const latestMarker = new Set<string>();
    const withBytes = new Set<string>();
    try {
      let keyMarker: string | undefined;
      let versionMarker: string | undefined;
      for (;;) {
        const response = await this.#client.send(
          new ListObjectVersionsCommand({ Bucket: this.bucket, Prefix: this.#keyPrefix + prefix, KeyMarker: keyMarker, VersionIdMarker: versionMarker }),
        );
        for (const m of response.DeleteMarkers ?? []) if (m.IsLatest) latestMarker.add(m.Key ?? '');
        for (const v of response.Versions ?? []) withBytes.add(v.Key ?? '');
        if (response.IsTruncated !== true) break;
        keyMarker = response.NextKeyMarker;
        versionMarker = response.NextVersionIdMarker;
      }
    } catch (err) {
      throw this.#wrap('list', prefix, err);
    }
    const out: string[] = [];
    for (const s3Key of latestMarker) {
      const key = withBytes.has(s3Key) ? this.#storeKey(s3Key) : undefined;
      if (key !== undefined) out.push(key);
    }
    return out.sort();
  }

  async undelete(keys: string[]): Promise<void> {
    for (const key of keys) validateKey(key);
    await mapLimit([...new Set(keys)], DELETE_CONCURRENCY, async (key) => {
      try {
        const versions = await this.#versions(key);
        const newest = Math.max(-1, ...versions.filter((v) => !v.marker).map((v) => v.modified));
        if (newest < 0) return;
        // Deleting a delete marker removes no bytes: it only uncovers the version below.
        for (const m of versions.filter((v) => v.marker && v.modified >= newest)) {
          await this.#client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.#s3Key(key), VersionId: m.id }));
        }
      } catch (err) {
        throw this.#wrap('delete', key, err);
      }
    });
  }

  /**
   * The one PUT of an object: created only if the key is free, atomically (412 if not),
   * the S3 equivalent of the fs store's link(); a PUT is atomic, so no reader ever sees
   * part of it. `lock`: Object Lock fields for a locked object (a versioned bucket, where
   * RGW ignores If-None-Match: #putVersioned checks first).
   */
  #putCommand(key: string, data: Uint8Array, lock: { ObjectLockMode?: StoreRetention['mode']; ObjectLockRetainUntilDate?: Date } = {}): PutObjectCommand {
    return new PutObjectCommand({
      Bucket: this.bucket,
      Key: this.#s3Key(key),
      Body: data,
      ContentLength: data.byteLength,
      ContentType: 'application/octet-stream',
      IfNoneMatch: '*',
      ...lock,
    });
  }

  /**
   * putIfAbsent in a versioned bucket. Ceph RGW ignores If-None-Match there (a second PUT
   * just adds a version), so the key is looked up first. An immutable object is locked: two
   * writers racing past the lookup leave two versions of the same content-named bytes,
   * which costs space until both expire and nothing else. A control object (GC lock,
   * condemnation list, marker) needs a real winner: the oldest version wins, and a loser
   * removes its own version and answers false.
   */
  async #putVersioned(key: string, data: Uint8Array, retention: StoreRetention): Promise<boolean> {
    const locked = retention.locks(key);
    let versionId: string | undefined;
    try {
      if ((await this.#size(key)) !== undefined) return false;
      const response = await this.#client.send(
        this.#putCommand(
          key,
          data,
          locked ? { ObjectLockMode: retention.mode, ObjectLockRetainUntilDate: new Date(Date.now() + retention.days * DAY_MS) } : {},
        ),
      );
      versionId = response.VersionId;
      if (locked || versionId === undefined) return true;
      const versions = await this.#versions(key);
      const markedAt = Math.max(0, ...versions.filter((v) => v.marker).map((v) => v.modified));
      const live = versions.filter((v) => !v.marker && v.modified > markedAt).sort((a, b) => a.modified - b.modified || a.id.localeCompare(b.id));
      if (live.length === 0 || live[0].id === versionId) return true;
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.#s3Key(key), VersionId: versionId }));
      return false;
    } catch (err) {
      if (errorName(err) === 'PreconditionFailed' || httpStatus(err) === 412) return false;
      throw this.#wrap('put', key, err);
    }
  }

  /**
   * Deleting in a versioned bucket: a plain DELETE only adds a delete marker, and the bytes
   * stay (and are billed) for ever. Every version and marker of the key is removed. A
   * version still under retention cannot be: then the key is hidden behind a delete marker
   * (what a caller that withdraws an object wants) and its bytes go when the lock has
   * passed and a later GC deletes again. GC and prune ask lockedUntil first, so they do not
   * come here for locked objects.
   */
  async #deleteAllVersions(key: string): Promise<void> {
    const s3Key = this.#s3Key(key);
    try {
      const versions = await this.#versions(key);
      let locked = false;
      for (let i = 0; i < versions.length; i += S3_PAGE_MAX) {
        const response = await this.#client.send(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: versions.slice(i, i + S3_PAGE_MAX).map((v) => ({ Key: s3Key, VersionId: v.id })), Quiet: true },
          }),
        );
        for (const e of response.Errors ?? []) {
          if (e.Code === 'NoSuchKey' || e.Code === 'NoSuchVersion') continue;
          if (e.Code === 'AccessDenied') locked = true;
          else throw new ObjectStoreError(this.location, 'delete', key, describeS3Error({ name: e.Code ?? 'Error', message: e.Message }, this.#errorContext));
        }
      }
      if (locked) await this.#client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: s3Key }));
    } catch (err) {
      throw this.#wrap('delete', key, err);
    }
  }

  /** Every version and delete marker of exactly `key`. */
  async #versions(key: string): Promise<{ id: string; marker: boolean; modified: number }[]> {
    const s3Key = this.#s3Key(key);
    const out: { id: string; marker: boolean; modified: number }[] = [];
    let keyMarker: string | undefined;
    let versionMarker: string | undefined;
    for (;;) {
      const response = await this.#client.send(
        new ListObjectVersionsCommand({ Bucket: this.bucket, Prefix: s3Key, KeyMarker: keyMarker, VersionIdMarker: versionMarker }),
      );
      let other = false;
      for (const [entries, marker] of [
        [response.Versions ?? [], false],
        [response.DeleteMarkers ?? [], true],
      ] as const) {
        for (const v of entries) {
          // The prefix also matches longer keys (`a` and `a.b`); those are not ours.
          if (v.Key !== s3Key) other = true;
          else if (v.VersionId !== undefined) out.push({ id: v.VersionId, marker, modified: v.LastModified?.getTime() ?? 0 });
        }
      }
      if (response.IsTruncated !== true || other) return out;
      keyMarker = response.NextKeyMarker;
      versionMarker = response.NextVersionIdMarker;
    }
  }

  // --- get ---

  async #getWhole(key: string): Promise<Uint8Array> {
    return this.#withBodyRetries(async () => {
      const response = await this.#getObject(key, undefined);
      const body = await readBody(response);
      if (response.ContentLength !== undefined && body.byteLength !== response.ContentLength) {
        throw new ShortBodyError(body.byteLength, response.ContentLength);
      }
      return body;
    });
  }

  async #getRange(key: string, { offset, length }: ByteRange): Promise<Uint8Array> {
    const wellFormed = Number.isSafeInteger(offset) && Number.isSafeInteger(length) && offset >= 0 && length >= 0;
    if (!wellFormed || length === 0) {
      // S3 cannot express an empty range (and a bad one needs the size for the message):
      // the size decides, and a missing object is still "not found".
      const size = await this.#size(key);
      if (size === undefined) throw new ObjectNotFoundError(this.location, key);
      if (!wellFormed || offset > size) throw new RangeOutOfBoundsError(this.location, key, offset, length, size);
      return new Uint8Array(0);
    }
    return this.#withBodyRetries(async () => {
      let response: GetObjectCommandOutput;
      try {
        response = await this.#getObject(key, `bytes=${offset}-${offset + length - 1}`);
      } catch (err) {
        // 416: the range starts at or past the end. Ask for the size to say by how much.
        if (httpStatus(err) !== 416 && errorName(err) !== 'InvalidRange') throw err;
        const size = await this.#size(key);
        if (size === undefined) throw new ObjectNotFoundError(this.location, key);
        throw new RangeOutOfBoundsError(this.location, key, offset, length, size);
      }
      const total = totalFromContentRange(response.ContentRange);
      if (total === undefined) {
        // A server that ignored Range sent the whole object (200).
        const whole = await readBody(response);
        if (offset + length > whole.byteLength) throw new RangeOutOfBoundsError(this.location, key, offset, length, whole.byteLength);
        return whole.subarray(offset, offset + length);
      }
      // S3 trims a range that runs past the end instead of failing it.
      if (offset + length > total) {
        discardBody(response);
        throw new RangeOutOfBoundsError(this.location, key, offset, length, total);
      }
      const body = await readBody(response);
      if (body.byteLength !== length) throw new ShortBodyError(body.byteLength, length);
      return body;
    });
  }

  async #getObject(key: string, range: string | undefined): Promise<GetObjectCommandOutput> {
    try {
      return await this.#client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.#s3Key(key), Range: range }));
    } catch (err) {
      if (isNoSuchKey(err)) throw new ObjectNotFoundError(this.location, key);
      throw err;
    }
  }

  /**
   * The SDK retries a request until its response headers arrive; a connection that
   * breaks while the body streams in surfaces later, in the read. Those reads are
   * retried here, whole, on the same budget of attempts and backoff.
   */
  async #withBodyRetries<T>(read: () => Promise<T>): Promise<T> {
    const policy = this.#settings.retry;
    return retrying(read, {
      attempts: policy.maxAttempts,
      retryable: (err) => err instanceof BodyReadError || err instanceof ShortBodyError,
      // Full jitter, as S3RetryStrategy waits for transient errors.
      delayMs: (attempt) => Math.random() * Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1)),
    });
  }

  /** The object's size, or undefined if there is no such object. */
  async #size(key: string): Promise<number | undefined> {
    try {
      const response = await this.#client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.#s3Key(key) }));
      return response.ContentLength ?? 0;
    } catch (err) {
      // A HEAD response has no body, so a missing bucket also looks like this; open()
      // checks the bucket, and any write to a vanished bucket fails with NoSuchBucket.
      if (httpStatus(err) === 404) return undefined;
      throw err;
    }
  }

  // --- list ---

  async #list(prefix: string, after: string | undefined, maxKeys: number, times: boolean): Promise<ListPage> {
    let continuationToken: string | undefined;
    for (;;) {
      const response = await this.#client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: this.#keyPrefix + prefix,
          MaxKeys: maxKeys,
          // Every key of this store starts with the prefix, so comparing `prefix/k` with
          // `prefix/after` orders them as k with after.
          StartAfter: continuationToken === undefined && after !== undefined && after !== '' ? this.#keyPrefix + after : undefined,
          ContinuationToken: continuationToken,
        }),
      );
      const objects: ObjectInfo[] = [];
      for (const entry of response.Contents ?? []) {
        const key = this.#storeKey(entry.Key);
        if (key !== undefined)
          objects.push(times && entry.LastModified ? { key, size: entry.Size ?? 0, modified: entry.LastModified } : { key, size: entry.Size ?? 0 });
      }
      const more = response.IsTruncated === true;
      if (!more) return { objects };
      // A page that says more remain must not be empty (the contract): S3 may send an
      // empty truncated page, and names no key can have are skipped, so read on.
      if (objects.length > 0) return { objects, next: objects[objects.length - 1].key };
      continuationToken = response.NextContinuationToken;
      if (continuationToken === undefined) throw new Error('the server said the listing was truncated but gave no continuation token');
    }
  }

  // --- delete ---

  async #deleteBatch(keys: string[]): Promise<void> {
    let errors;
    try {
      const response = await this.#client.send(
        new DeleteObjectsCommand({
          Bucket: this.bucket,
          // Quiet: only failures are listed, which keeps the response small.
          Delete: { Objects: keys.map((key) => ({ Key: this.#s3Key(key) })), Quiet: true },
        }),
      );
      // Deleting an absent key succeeds in S3; NoSuchKey is filtered anyway for servers
      // that report it.
      errors = (response.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
    } catch (err) {
      throw this.#wrap('delete', keys[0], err);
    }
    if (errors.length === 0) return;
    const first = errors[0];
    const key = this.#storeKey(first.Key) ?? first.Key ?? keys[0];
    const others = errors.length > 1 ? ` (and ${errors.length - 1} more of the ${keys.length} keys in the batch failed)` : '';
    const failure = { name: first.Code ?? 'Error', message: first.Message };
    const reason = `${describeS3Error(failure, this.#errorContext)}${others}`;
    const code = environmentCodeOfS3Error(failure);
    if (code) throw new EnvironmentError(this.location, 'delete', key, code, { bucket: this.bucket, reason });
    throw new ObjectStoreError(this.location, 'delete', key, reason);
  }

  // --- bucket ---

  async #checkBucket(create: boolean, objectLock: boolean): Promise<void> {
    // Its own client with a short retry budget: a wrong endpoint should be reported in a
    // second, not after the minute of retries an upload deserves.
    const policy = { ...this.#settings.retry, maxAttempts: Math.min(this.#settings.retry.maxAttempts, OPEN_MAX_ATTEMPTS) };
    const client = makeClient(this.#settings, policy);
    try {
      try {
        await client.send(new HeadBucketCommand({ Bucket: this.bucket }));
        return;
      } catch (err) {
        if (httpStatus(err) === 404) {
          if (!create) throw this.#wrap('head', '', { name: 'NoSuchBucket', $metadata: { httpStatusCode: 404 } }, err);
        } else if (httpStatus(err) === 403) {
          // HEAD answers a bare 403; a GET says which of key, secret or permission it is.
          await client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.#keyPrefix, MaxKeys: 1 })).catch((listErr: unknown) => {
            throw this.#wrap('head', '', listErr);
          });
          throw this.#wrap('head', '', err);
        } else {
          throw this.#wrap('head', '', err);
        }
      }
      try {
        await client.send(
          new CreateBucketCommand({
            Bucket: this.bucket,
            ObjectLockEnabledForBucket: objectLock ? true : undefined,
            // AWS wants the region named outside us-east-1; other servers have their own
            // notion of location and take the default.
            CreateBucketConfiguration:
              this.endpoint === undefined && this.region !== DEFAULT_REGION ? { LocationConstraint: this.region as BucketLocationConstraint } : undefined,
          }),
        );
      } catch (err) {
        // Created concurrently by ourselves: fine. By someone else: the name is taken.
        if (errorName(err) === 'BucketAlreadyOwnedByYou') return;
        if (errorName(err) === 'BucketAlreadyExists') {
          throw new ObjectStoreError(this.location, 'put', '', `bucket ${this.bucket} cannot be created: the name is taken by another account`, { cause: err });
        }
        throw this.#wrap('put', '', err);
      }
    } finally {
      client.destroy();
    }
  }

  // --- helpers ---

  #s3Key(key: string): string {
    return this.#keyPrefix + key;
  }

  /** The store key of an S3 key, or undefined if it is outside the prefix or no key can have it. */
  #storeKey(s3Key: string | undefined): string | undefined {
    if (s3Key === undefined || !s3Key.startsWith(this.#keyPrefix)) return undefined;
    const key = s3Key.slice(this.#keyPrefix.length);
    try {
      validateKey(key);
    } catch {
      // Written by another tool (`a//b`, spaces): get() could not read it either.
      return undefined;
    }
    return key;
  }

  #wrap(operation: StoreOperation, key: string, err: unknown, cause: unknown = err): Error {
    if (err instanceof ObjectStoreError || err instanceof InvalidKeyError) return err;
    const reason = err instanceof BodyReadError || err instanceof ShortBodyError ? err.message : describeS3Error(err, this.#errorContext);
    // Over quota or refused: one line naming the bucket, never a bug report (docs/storage.md).
    const code = environmentCodeOfS3Error(err);
    if (code) return new EnvironmentError(this.location, operation, key, code, { bucket: this.bucket, reason }, { cause });
    return new ObjectStoreError(this.location, operation, key, reason, { cause });
  }
}

function resolveSettings(options: S3ObjectStoreOptions): ResolvedSettings {
  const env = options.env ?? process.env;
  const { bucket, prefix } = bucketAndPrefix(options);
  const endpoint = options.endpoint ?? nonEmpty(env.HOARD_S3_ENDPOINT) ?? nonEmpty(env.AWS_ENDPOINT_URL_S3) ?? nonEmpty(env.AWS_ENDPOINT_URL);
  if (endpoint !== undefined) checkEndpoint(endpoint);
  const credentials = options.credentials ?? credentialsFromEnv(env);
  return {
    bucket,
    prefix,
    endpoint,
    region: options.region ?? nonEmpty(env.AWS_REGION) ?? nonEmpty(env.AWS_DEFAULT_REGION) ?? DEFAULT_REGION,
    // Compatible servers rarely have wildcard DNS for bucket.host names.
    forcePathStyle: options.forcePathStyle ?? endpoint !== undefined,
    credentials,
    retry: resolveRetryPolicy(options.retry),
    connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
  };
}

function bucketAndPrefix(options: S3ObjectStoreOptions): S3Url {
  if (options.url !== undefined) {
    if (options.bucket !== undefined || options.prefix !== undefined) throw new S3ConfigError('give either url or bucket and prefix, not both');
    return parseS3Url(options.url);
  }
  if (options.bucket === undefined) throw new S3ConfigError('an S3 store needs a url (s3://bucket/prefix) or a bucket');
  validateBucketName(options.bucket);
  const prefix = options.prefix ?? '';
  validateStorePrefix(prefix);
  return { bucket: options.bucket, prefix };
}

function makeClient(settings: ResolvedSettings, retry: S3RetryPolicy): S3Client {
  return new S3Client({
    region: settings.region,
    endpoint: settings.endpoint,
    forcePathStyle: settings.forcePathStyle,
    credentials: settings.credentials,
    // Since 2025 the SDK adds CRC checksums (and aws-chunked trailers) to every upload by
    // default; servers other than AWS reject or mis-store those. Only operations that
    // require a checksum (DeleteObjects) get one. Uploads are still covered by SigV4's
    // payload hash.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: retry.maxAttempts,
    retryStrategy: new S3RetryStrategy(retry),
    // AWS only: a bucket in another region is found by following the redirect.
    followRegionRedirects: settings.endpoint === undefined,
    requestHandler: {
      connectionTimeout: settings.connectTimeoutMs,
      // A stalled connection fails as a TimeoutError, which is retried.
      socketTimeout: settings.idleTimeoutMs,
    },
  });
}

function credentialsFromEnv(env: Readonly<Record<string, string | undefined>>): S3Credentials | undefined {
  const accessKeyId = nonEmpty(env.AWS_ACCESS_KEY_ID);
  const secretAccessKey = nonEmpty(env.AWS_SECRET_ACCESS_KEY);
  if (accessKeyId === undefined || secretAccessKey === undefined) return undefined;
  const sessionToken = nonEmpty(env.AWS_SESSION_TOKEN);
  return sessionToken === undefined ? { accessKeyId, secretAccessKey } : { accessKeyId, secretAccessKey, sessionToken };
}

function checkEndpoint(endpoint: string): void {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new S3ConfigError(`S3 endpoint ${JSON.stringify(endpoint)} is not a URL (expected e.g. http://127.0.0.1:7480 or https://s3.example.com)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new S3ConfigError(`S3 endpoint ${JSON.stringify(endpoint)} must start with http:// or https://`);
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/** GetObject on a missing key. NoSuchBucket is a 404 too, and must not look like "no object". */
function isNoSuchKey(err: unknown): boolean {
  return errorName(err) === 'NoSuchKey' || (httpStatus(err) === 404 && errorName(err) !== 'NoSuchBucket');
}

/** The body ended or broke before all its bytes arrived. */
class BodyReadError extends Error {
  override name = 'BodyReadError';
  readonly code: ErrorCode = 'storage_unavailable';
}

/** The body was shorter or longer than the response said or the range asked for. */
class ShortBodyError extends Error {
  override name = 'ShortBodyError';
  readonly code: ErrorCode = 'storage_unavailable';
  constructor(got: number, expected: number) {
    super(`the server sent ${got} bytes where ${expected} were expected`);
  }
}

async function readBody(response: GetObjectCommandOutput): Promise<Uint8Array> {
  if (response.Body === undefined) return new Uint8Array(0);
  try {
    return await response.Body.transformToByteArray();
  } catch (err) {
    throw new BodyReadError(`the connection broke while reading the object: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/** Frees the connection of a response whose body is not wanted. */
function discardBody(response: GetObjectCommandOutput): void {
  const body = response.Body as { destroy?: () => void } | undefined;
  body?.destroy?.();
}

/** The total size from `Content-Range: bytes 0-9/1000`, or undefined if absent. */
function totalFromContentRange(contentRange: string | undefined): number | undefined {
  const match = contentRange === undefined ? null : /\/(\d+)\s*$/.exec(contentRange);
  return match === null ? undefined : Number(match[1]);
}
