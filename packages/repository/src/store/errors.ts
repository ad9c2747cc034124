/** Errors from object stores. Each names the store location, the operation and the key. */
export type StoreOperation = 'put' | 'get' | 'head' | 'list' | 'delete';

export class ObjectStoreError extends Error {
  override name = 'ObjectStoreError';
  constructor(
    readonly location: string,
    readonly operation: StoreOperation,
    readonly key: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${operation}${key ? ` ${key}` : ''} in ${location} failed: ${reason}`, options);
  }
}

/** The object does not exist. */
export class ObjectNotFoundError extends ObjectStoreError {
  override name = 'ObjectNotFoundError';
  constructor(location: string, key: string) {
    super(location, 'get', key, 'no such object');
  }
}

/** A key that could escape the store or is otherwise malformed (caller bug or hostile input). */
export class InvalidKeyError extends Error {
  override name = 'InvalidKeyError';
  constructor(
    readonly key: string,
    readonly reason: string,
  ) {
    super(`invalid object key ${JSON.stringify(key)}: ${reason}`);
  }
}

/** A byte range that does not lie inside the object. */
export class RangeOutOfBoundsError extends ObjectStoreError {
  override name = 'RangeOutOfBoundsError';
  constructor(location: string, key: string, offset: number, length: number, size: number) {
    super(location, 'get', key, `range ${offset}+${length} is outside the object (${size} bytes)`);
  }
}
