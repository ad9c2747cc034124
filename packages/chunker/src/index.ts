export { ChunkerParameterError, IndexFormatError, formatBytes } from './errors.js';
export {
  type ChunkerSpec,
  type FastCdcSpec,
  type FixedSpec,
  type FastCdcVariant,
  type ResolvedChunker,
  type ResolvedFastCdc,
  type ResolvedFixed,
  resolveChunker,
  cutMask,
  KiB,
  MiB,
  MAX_CHUNK_SIZE,
  MIN_AVG_SIZE,
  MAX_AVG_SIZE,
} from './params.js';
export { gearTable, defaultGearTable } from './gear.js';
export { type Cutter, createCutter, cutterFor, findCutPoints } from './cutter.js';
export {
  type Fingerprinter,
  type FingerprintSpec,
  FINGERPRINT_BYTES,
  createFingerprinter,
  isAllZero,
  ChunkHasher,
} from './fingerprint.js';
export { type Chunk, type ChunkSource, type ReadIntoSource, isReadIntoSource } from './types.js';
export { Chunker, chunkStream, defaultWorkerCount, type ChunkerOptions } from './chunker.js';
export { FILE_PIECE_BYTES, fileSource, readFileReusing, readHandleReusing, type FileSourceOptions } from './file-source.js';
export { windowBytes } from './sequential.js';
export { defaultSegmentBytes, type SegmentPipelineOptions } from './parallel/segment-pipeline.js';
export { FingerprintIndex, type FingerprintIndexOptions } from './fingerprint-index.js';
export { chunkingFor, type SourceKind } from './presets.js';
export { instantiateWasm, type WasmMemory } from './wasm/instantiate.js';
