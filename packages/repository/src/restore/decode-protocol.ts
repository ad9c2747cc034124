/**
 * Messages between the restore pipeline and its decode workers. A job is one fetched
 * range of a pack: its bytes (transferred, not copied), the distinct blobs in it, and
 * what to do with each decoded blob: write pieces of it at stream positions into a file
 * descriptor (positional targets), and/or send it back (ordered targets).
 */
import type { BlobCheck } from '../blob/errors.js';

/** The store's keys as the worker needs them (encrypted stores only). */
export interface DecodeKeys {
  /** 32-byte AES-256-GCM data key. */
  dataKey?: Uint8Array;
  /** 32-byte key of keyed BLAKE3 fingerprints. */
  fingerprintKey?: Uint8Array;
}

/** Fields per blob in DecodeJob.blobs. */
export const BLOB_FIELDS = 4;
/** Fields per write in DecodeJob.writes. */
export const WRITE_FIELDS = 4;

export interface DecodeJob {
  id: number;
  keys: DecodeKeys;
  /** The fetched bytes; the job's `data` view starts at `byteOffset`. */
  buffer: ArrayBuffer;
  byteOffset: number;
  byteLength: number;
  /** Per blob: offset in the view, stored length, codec byte, raw length. */
  blobs: Int32Array;
  /** 32 bytes per blob. */
  fingerprints: Uint8Array;
  /** Where `writes` go; undefined when nothing is written by the worker. */
  fd?: number;
  /** Per write: blob index, first byte of the blob, end byte (exclusive), file position. */
  writes: Float64Array;
  /** Send the decoded blobs back (ordered targets and stream hashing). */
  returnData: boolean;
  /** A buffer the decoded blobs may go into (returnData), given back from an earlier job. */
  output?: ArrayBuffer;
}

export interface DecodeDone {
  id: number;
  /** The decoded blobs one after another (returnData), and where each starts. */
  data?: ArrayBuffer;
  starts?: Float64Array;
  /** Bytes the worker wrote to the file. */
  written: number;
  /** The job's buffer, given back for the next read (no fresh memory per read). */
  input: ArrayBuffer;
  /** The output buffer offered, when it was not used. */
  unused?: ArrayBuffer;
}

export interface DecodeFailed {
  id: number;
  error: {
    /** Index of the blob that failed, when one did. */
    blob?: number;
    /** The blob check that failed (a damaged blob). */
    check?: BlobCheck;
    /** errno code of a failed write (ENOSPC, EIO, ...). */
    code?: string;
    message: string;
  };
}

export type DecodeReply = DecodeDone | DecodeFailed;
