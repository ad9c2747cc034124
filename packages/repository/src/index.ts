export type { ObjectStore, ObjectInfo, ByteRange, ListPage, ListOptions, ObjectLockMode, StoreRetention } from './store/object-store.js';
export { listAll } from './store/object-store.js';
export { ObjectStoreError, ObjectNotFoundError, InvalidKeyError, RangeOutOfBoundsError, type StoreOperation } from './store/errors.js';
export {
  EnvironmentError,
  findEnvironmentError,
  describeEnvironmentProblem,
  environmentAdvice,
  isEnvironmentErrno,
  type EnvironmentCode,
} from './store/errors.js';
export {
  BlobCodec,
  type EncodedBlob,
  type FingerprintCheck,
  PAYLOAD_RAW,
  PAYLOAD_LZ4,
  PAYLOAD_ZSTD,
  CODEC_ENCRYPTED,
  DATA_KEY_BYTES,
} from './blob/codec.js';
export { BlobCorruptError, BlobCodecConfigError, type BlobCheck } from './blob/errors.js';
export { SEAL_OVERHEAD, type EncodedInPlace, type InPlaceChunk } from './blob/encode-pool.js';
export { fingerprintKey } from './repo/fingerprint-key.js';
export {
  type BlobCompression,
  DEFAULT_COMPRESSION,
  LEGACY_COMPRESSION,
  COMPRESSION_SYNTAX,
  ZSTD_DEFAULT_LEVEL,
  ZSTD_MIN_LEVEL,
  ZSTD_MAX_LEVEL,
  parseCompression,
  compressionFrom,
  formatCompression,
} from './blob/compression.js';
export {
  type StoreSecrets,
  type KeyFile,
  SCRYPT_DEFAULTS,
  WrongPassphraseError,
  KeyFileFormatError,
  generateSecrets,
  wrapSecrets,
  unwrapSecrets,
} from './crypto/store-secrets.js';
export {
  type PackEntry,
  type PackTrailer,
  PackFormatError,
  PACK_ENTRY_BYTES,
  PACK_FOOTER_BYTES,
  STORE_ID_BYTES,
  loadPackHashing,
  packKey,
  decodeTrailer,
  decodeFooter,
} from './pack/pack-format.js';
export { PackWriter, type SealedPack, DEFAULT_PACK_BYTES, MIN_PACK_BYTES, MAX_PACK_BYTES } from './pack/pack-writer.js';
export { PackStreamWriter, PIECE_BYTES, type StreamedPack } from './pack/pack-stream.js';
export { readPackTrailer } from './pack/pack-reader.js';
export {
  type IndexSegment,
  type SegmentPack,
  IndexSegmentFormatError,
  encodeIndexSegment,
  decodeIndexSegment,
  segmentKey,
  packKeyFromHash,
} from './index-segment/index-segment.js';
export {
  type ChunkRef,
  ChunkListFormatError,
  PAGE_CHUNKS,
  CHUNK_RECORD_BYTES,
  encodePage,
  PageBuilder,
  decodePage,
  pageKey,
} from './snapshot/chunk-list.js';
export {
  type SnapshotMeta,
  type SnapshotOrigin,
  type SourceKind,
  type PageRef,
  type Manifest,
  ManifestFormatError,
  InvalidJobNameError,
  validateJobName,
  compactTime,
  encodeManifest,
  decodeManifest,
} from './snapshot/manifest.js';
export { FsObjectStore, type FsObjectStoreOpenOptions } from './store/fs-store.js';
export { validateKey, validatePrefix } from './store/keys.js';
export { ObjectFormatError } from './format-error.js';
export {
  RepositoryError,
  RepositoryNotFoundError,
  RepositoryExistsError,
  PassphraseRequiredError,
  SnapshotNotFoundError,
  StoreScopeError,
  UnknownStoreError,
  SourceError,
  IntegrityError,
} from './repo/errors.js';
export { type RepositoryConfig, type StoreRecord, type StoreScope, RecordFormatError, InvalidStoreNameError, describeScope } from './repo/records.js';
export {
  DEFAULT_OBJECT_LOCK_MODE,
  MAX_OBJECT_LOCK_DAYS,
  OBJECT_LOCK_MODES,
  ObjectLockUnavailableError,
  isLockedKey,
  type ObjectLockConfig,
} from './repo/object-lock.js';
export { hiddenObjects, undeleteObjects } from './repo/undelete.js';
export { Repository, GLOBAL_STORE, snapshotId, type InitOptions, type OpenOptions, type SnapshotInfo } from './repo/repository.js';
export { FingerprintStore, hashChunkRef, streamHasher, type StorePairing } from './repo/fingerprint-store.js';
export { StoreIndex, type BlobLocation } from './repo/store-index.js';
export { backup, type BackupSource, type BackupOptions, type BackupProgress, type BackupResult } from './repo/backup.js';
export { restore, snapshotChunkRefs, RESTORE_MEMORY, type RestoreOptions, type RestoreProgress, type RestoreResult } from './repo/restore.js';
export { FileSink, NullSink, StreamSink, type RestoreSink, type PositionalTarget } from './repo/restore-sink.js';
export {
  checkTempSpace,
  damagedAfterData,
  DatabaseRestoreRefusedError,
  DatabaseSink,
  DatabaseToolError,
  RestoreDamagedError,
  type DatabaseTarget,
  type ParallelRestore,
} from './database/database-sink.js';
export { findInDirs, findPostgresProgram, findProgram, pathDirs, postgresBinDirs } from './database/programs.js';
export { otherDatabase, postgresConnection, type PostgresConnection } from './database/postgres-connection.js';
export { DecodePool, DecodeWorkerError, defaultDecodeWorkers } from './restore/decode-pool.js';
export { RestoreWriteError } from './restore/batch-decoder.js';
export { openRangeReader, type RangeReader, type StagedObject } from './store/object-store.js';
export { verify, type VerifyOptions, type VerifyPhase, type VerifyFinding, type VerifyReport } from './repo/verify.js';
export { repositoryStats, type RepositoryStats, type StoreStats, type StatsFigures } from './repo/stats.js';
// S3ObjectStore is in '@hoard/repository/s3': the AWS SDK takes half a second to load,
// which no command on a local repository should pay.
export { parseS3Url, S3ConfigError } from './store/s3-url.js';
export { StoreWriter, StoreWriteError, type StoreWriterOptions, type StoreWriterStats } from './repo/store-writer.js';
export { SnapshotWriter, manifestChunker } from './repo/snapshot-writer.js';
export {
  ARCHIVE_TRAILER_BYTES,
  ArchiveFormatError,
  EntryTableParser,
  decodeArchiveTrailer,
  encodeArchiveTrailer,
  encodeEntry,
  printablePath,
  unsafePathReason,
  type ArchiveTrailer,
  type DirEntry,
  type EntryType,
} from './archive/dir-archive.js';
export {
  ArchiveEntryNotFoundError,
  ArchiveTargetExistsError,
  archivePath,
  extractArchive,
  findEntry,
  readArchiveEntries,
  readArchiveFile,
  readArchiveIndex,
  type ArchiveIndex,
  type ArchiveSource,
  type ExtractResult,
} from './archive/extract.js';
export { SnapshotProtectedError, PROTECTED_PREFIX } from './repo/protection.js';
export { pruneJob, type PruneDecision, type PruneResult, type PruneOptions } from './repo/prune.js';
// Retention lives in @hoard/retention (one implementation for the CLI and policies); re-exported
// here so that embedded users (hoard prune --repo) keep one import.
export {
  planRetention,
  parseRetentionRules,
  hasKeepRule,
  parseRetentionDuration,
  parseRetentionDuration as parseDuration,
  retentionCutoff,
  retentionCutoff as subtractDuration,
  formatRetentionDuration,
  RetentionRuleError,
  type RetentionSnapshot,
  type RetentionRules,
  type RetentionDecision,
  type RetentionDuration,
  type DurationUnit,
} from '@hoard/retention';
export { collectGarbage, DEFAULT_GC_GRACE_MS, DEFAULT_REPACK_THRESHOLD, type GcOptions, type GcReport, type GcPhase } from './gc/collect-garbage.js';
export { GcError, GcLockedError, GcConflictError, GcDamagedError } from './gc/errors.js';
export { CONDEMNED_PREFIX, GC_LOCK_KEY, REVIVED_PREFIX } from './gc/gc-objects.js';
export { commitGuarded, type CommitReferences } from './gc/commit-guard.js';
export { repair, type RepairOptions, type RepairReport, type RepairPhase, type BrokenSnapshot } from './repo/repair.js';
export { MetadataDamagedError } from './repo/errors.js';
export type { IndexDamage } from './repo/store-index.js';
export { retrying, type RetryOptions } from './retry.js';
export { mapLimit } from './map-limit.js';
export {
  syncRepositories,
  snapshotIdentity,
  SyncRefusedError,
  type SyncOptions,
  type SyncEvent,
  type SyncEntry,
  type SyncReport,
} from './sync/sync-repositories.js';
export { copySnapshot, type CopiedSnapshot, type CopyProgress, type CopyOptions } from './sync/copy-snapshot.js';
export { verifyCopies, type CopyVerification, type CopyCheck } from './sync/verify-copies.js';
