/**
 * Default chunking per kind of source, chosen from the dedup measured by
 * `pnpm bench chunker` on the generated series (figures and reasoning in
 * benchmarks/README.md, "Default chunk sizes"):
 *
 * - VM images: FastCDC avg 64 KiB. Daily changes are small scattered writes; 64 KiB
 *   chunks upload 2.2x less per day than 256 KiB and 10x less than fixed 4 MiB blocks,
 *   for an index of ~29 bytes per ~90 KiB chunk (about 3.5 GiB of RAM per 10 TiB of
 *   unique data).
 * - Database dumps: FastCDC avg 16 KiB. Rows shift between dumps; at 64 KiB and above a
 *   day's small updates touch most chunks. Dumps are small next to disk images, so the
 *   larger index is affordable.
 * - Files: as VM images (not measured separately yet).
 */
import type { ChunkerSpec } from './params.js';
import { KiB } from './params.js';

export type SourceKind = 'vm-image' | 'db-dump' | 'file';

const PRESETS: Record<SourceKind, ChunkerSpec> = {
  'vm-image': { kind: 'fastcdc', avgSize: 64 * KiB },
  'db-dump': { kind: 'fastcdc', avgSize: 16 * KiB },
  file: { kind: 'fastcdc', avgSize: 64 * KiB },
};

export function chunkingFor(kind: SourceKind): ChunkerSpec {
  return { ...PRESETS[kind] };
}
