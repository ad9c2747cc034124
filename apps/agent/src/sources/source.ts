/**
 * What the agent reads: a source spec (see @hoard/protocol's parseSourceSpec) resolves to
 * one or more targets, each opened as a byte stream for the chunker. docs/sources.md
 * describes every source type, how it is read and how it fails.
 */
import type { SourceSpec, SourceStat } from '@hoard/protocol/agent';
import { cmdTarget } from './cmd.js';
import { resolveDirSource, type DirArchiveStats } from './dir.js';
import { resolveFileSource } from './file.js';
import { resolveLibvirtSource } from './libvirt.js';
import { mysqlTarget } from './mysql.js';
import { postgresTarget } from './postgres.js';
import { resolveVmSource } from './vm.js';

/** As recorded in snapshot manifests. */
export type SourceKind = 'file' | 'block-device' | 'stream' | 'directory';
/** Chunker preset. */
export type ChunkingKind = 'vm-image' | 'db-dump' | 'file';

export interface SourceTarget {
  /**
   * Stable name recorded in the snapshot: the image path, `postgres://host:port/db` (no
   * password), the command, ... Two runs of the same job produce the same name for the
   * same thing.
   */
  name: string;
  kind: SourceKind;
  chunking: ChunkingKind;
  open(signal?: AbortSignal, context?: OpenContext): Promise<OpenedSource>;
}

/** What a source may use besides its own data (only directory sources use it so far). */
export interface OpenContext {
  /**
   * The previous snapshot of the same job and source, for referring to its chunks again
   * instead of re-reading what did not change. Undefined on a full run, on the first run,
   * or when the previous snapshot is in another fingerprint store. Call it only once the
   * stream is being read (it needs the backup session).
   */
  previous?: () => Promise<PreviousSnapshot | undefined>;
}

/** Read access to the previous snapshot, through the media server. */
export interface PreviousSnapshot {
  id: string;
  kind: string;
  logicalBytes: number;
  /** Image sources: the image file's stat recorded in that snapshot (absent in older ones). */
  sourceStat?: SourceStat;
  /** Bytes of the previous stream (the server checks every chunk on the way). */
  read(offset: number, length: number): AsyncIterable<Uint8Array>;
  /**
   * The chunks that make up exactly [offset, offset+length) of the previous stream, in
   * order; undefined when the range does not start on a chunk boundary. Fails when the
   * range's end is not one either.
   */
  chunks(offset: number, length: number): Promise<AsyncIterable<SourceChunkRef> | undefined>;
}

export interface SourceChunkRef {
  length: number;
  zero: boolean;
  fingerprint: Uint8Array;
}

/**
 * A source delivered in parts: bytes to chunk (each part chunked on its own, so its
 * boundaries are chunk boundaries) or chunks of the previous snapshot referred to again.
 */
export type SourcePart = { kind: 'bytes'; stream: AsyncIterable<Uint8Array>; sizeHint?: number } | { kind: 'chunks'; refs: AsyncIterable<SourceChunkRef> };

export interface OpenedSource {
  /**
   * The bytes, in order; iterate it once. Consumed with backpressure: the producer waits for
   * the reader. A piece is valid only until the next one is asked for (files and devices
   * are read into one reused buffer): copy what you keep.
   */
  stream?: AsyncIterable<Uint8Array>;
  /**
   * Instead of `stream`: the source in parts (directory archives). The snapshot's stream
   * hash then covers its chunk list (manifest `streamHashOver: "chunks"`), because parts
   * referred to again are not read.
   */
  parts?: AsyncIterable<SourcePart>;
  /** Directory archives: files read, files unchanged (not read), entries skipped; filled in as it goes. */
  archive?: DirArchiveStats;
  /**
   * Called once the backup session has begun (so `context.previous` works), before
   * `stream` or `parts` is read; it may set them (an image found unchanged delivers the
   * previous snapshot's chunks as `parts` instead of a `stream`). See unchanged-image.ts.
   */
  prepare?(): Promise<void>;
  /** Image sources: the stat to record in the snapshot; read once `done` has resolved. */
  sourceStat?: SourceStat;
  /** Image sources: whether the image was found unchanged and not read. */
  image?: { unchanged: boolean; bytesUnchanged: number; previous?: string };
  /**
   * Known size (regular file, block device, qcow2 virtual size). The stream itself fails
   * with SourceSizeMismatchError when it ends early or runs long, and so does `done`.
   */
  expectedBytes?: number;
  /**
   * Resolves when the producer finished successfully (command exit 0, every byte read);
   * rejects with SourceFailedError (exit status + the last ~2 KiB of stderr) or another
   * SourceError otherwise. Await it after the stream ends and before committing anything.
   * It never causes an unhandled rejection when nobody awaits it.
   */
  done: Promise<void>;
  /** Stops the producer (kills the child process group, closes files); idempotent; resolves once it is gone. */
  close(): Promise<void>;
}

export interface ResolveOptions {
  /**
   * Environment for the programs the sources run (pg_dump, mysqldump, virsh, qemu-nbd,
   * commands); default process.env. Passwords from URLs are added to it, never put on
   * a command line.
   */
  env?: NodeJS.ProcessEnv;
  /** Told about things that were skipped on purpose (a libvirt network disk, an empty CD-ROM drive). */
  onWarning?: (message: string) => void;
}

/** Turns a spec into its targets. A glob or pattern that matches nothing yields []: the caller decides whether that is an error. */
export async function resolveSource(spec: SourceSpec, options: ResolveOptions = {}): Promise<SourceTarget[]> {
  const env = options.env ?? process.env;
  switch (spec.type) {
    case 'file':
      return [await resolveFileSource(spec.path)];
    case 'vm':
      return resolveVmSource(spec.glob, env);
    case 'libvirt':
      return resolveLibvirtSource(spec, env, options.onWarning ?? (() => {}));
    case 'postgres':
      return [postgresTarget(spec, env)];
    case 'mysql':
      return [mysqlTarget(spec, env)];
    case 'cmd':
      return [cmdTarget(spec.command, env)];
    case 'dir':
      return [await resolveDirSource(spec.path, options.onWarning ?? (() => {}))];
  }
}
