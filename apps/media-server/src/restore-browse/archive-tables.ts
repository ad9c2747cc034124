/**
 * Directory snapshots' entry tables, parsed once and kept for the pages that follow: a
 * browser that pages through a 100k-entry directory asks for 500 pages, and reading and
 * checking the table (a ranged restore of a few MB) for each would be 500 table reads.
 *
 * The cache is bounded by an estimate of the memory its tables hold (entries plus their
 * path bytes), least recently used first out. A table larger than the whole budget is
 * parsed for the request and not kept. Loads of one snapshot at once share one read.
 */
import { readArchiveIndex, restore, type ArchiveIndex, type ArchiveSource, type DirEntry, type Repository, type SnapshotInfo } from '@hoard/repository';

/** What one parsed entry costs, beyond its path and target bytes (object, two Buffers, the child list slot). */
const ENTRY_OVERHEAD_BYTES = 320;
export const DEFAULT_TABLE_CACHE_BYTES = 128 * 1024 * 1024;

/** A parsed table with each directory's children in listing order (directories first, then by name). */
export class ArchiveTree {
  private readonly children = new Map<string, number[]>();
  readonly estimatedBytes: number;

  constructor(
    readonly snapshot: SnapshotInfo,
    readonly index: ArchiveIndex,
  ) {
    let bytes = 0;
    const { entries } = index;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      bytes += ENTRY_OVERHEAD_BYTES + e.path.length + (e.target?.length ?? 0);
      const key = e.path.toString('latin1');
      if (key === '.') continue;
      const slash = key.lastIndexOf('/');
      const parent = slash < 0 ? '.' : key.slice(0, slash);
      let list = this.children.get(parent);
      if (!list) this.children.set(parent, (list = []));
      list.push(i);
    }
    const name = (i: number): Buffer => baseName(entries[i]!.path);
    for (const list of this.children.values()) {
      list.sort((a, b) => {
        const da = entries[a]!.type === 'dir' ? 0 : 1;
        const db = entries[b]!.type === 'dir' ? 0 : 1;
        return da - db || Buffer.compare(name(a), name(b));
      });
    }
    this.estimatedBytes = bytes;
  }

  /** The entry at a recorded path ('.' for the top), or undefined. */
  entry(path: Buffer): DirEntry | undefined {
    const key = path.toString('latin1');
    if (key === '.') return this.index.entries[0];
    const slash = key.lastIndexOf('/');
    const parent = slash < 0 ? '.' : key.slice(0, slash);
    const list = this.children.get(parent);
    if (!list) return undefined;
    for (const i of list) if (this.index.entries[i]!.path.equals(path)) return this.index.entries[i];
    return undefined;
  }

  /** A directory's children in listing order (indexes into the entries). */
  childrenOf(path: Buffer): readonly number[] {
    return this.children.get(path.toString('latin1')) ?? [];
  }

  /** The entry and everything below it, in table order (the order of the file contents). */
  subtree(path: Buffer): DirEntry[] {
    const key = path.toString('latin1');
    if (key === '.') return this.index.entries;
    const prefix = Buffer.from(`${key}/`, 'latin1');
    return this.index.entries.filter((e) => e.path.equals(path) || (e.path.length > prefix.length && e.path.subarray(0, prefix.length).equals(prefix)));
  }
}

export function baseName(path: Buffer): Buffer {
  const slash = path.lastIndexOf(0x2f);
  return slash < 0 ? path : path.subarray(slash + 1);
}

/** An archive read through the restore pipeline: every chunk of each range is checked. */
export function repositoryArchiveSource(repo: Repository, snapshot: SnapshotInfo): ArchiveSource {
  return {
    snapshot: snapshot.id,
    length: snapshot.meta.logicalBytes,
    async *read(offset: number, length: number): AsyncGenerator<Uint8Array> {
      // Only the trailer and the entry table are read this way: a few MB at most.
      const parts: Uint8Array[] = [];
      await restore(repo, snapshot, collectingSink(parts), { range: { offset, length } });
      yield Buffer.concat(parts);
    },
  };
}

function collectingSink(parts: Uint8Array[]) {
  return {
    write: async (data: Uint8Array) => void parts.push(Buffer.from(data)),
    zeros: async (length: number) => void parts.push(Buffer.alloc(length)),
    finish: async () => {},
    abort: async () => {},
  };
}

export class ArchiveTableCache {
  private readonly trees = new Map<string, Promise<ArchiveTree>>();
  private readonly sizes = new Map<string, number>();
  private bytes = 0;

  constructor(
    private readonly repo: Repository,
    private readonly budgetBytes = DEFAULT_TABLE_CACHE_BYTES,
  ) {}

  /** The snapshot's parsed tree (the snapshot must be a directory snapshot). */
  async tree(snapshot: SnapshotInfo): Promise<ArchiveTree> {
    const key = snapshot.key;
    const cached = this.trees.get(key);
    if (cached) {
      // Most recently used last.
      this.trees.delete(key);
      this.trees.set(key, cached);
      return cached;
    }
    const loading = readArchiveIndex(repositoryArchiveSource(this.repo, snapshot)).then((index) => new ArchiveTree(snapshot, index));
    this.trees.set(key, loading);
    try {
      const tree = await loading;
      if (this.trees.get(key) === loading) this.keep(key, tree.estimatedBytes);
      return tree;
    } catch (err) {
      if (this.trees.get(key) === loading) this.trees.delete(key);
      throw err;
    }
  }

  /** Estimated bytes held now (for tests and metrics). */
  get heldBytes(): number {
    return this.bytes;
  }

  private keep(key: string, size: number): void {
    if (size > this.budgetBytes) {
      this.trees.delete(key);
      return;
    }
    this.sizes.set(key, size);
    this.bytes += size;
    for (const old of this.trees.keys()) {
      if (this.bytes <= this.budgetBytes) break;
      if (old === key || !this.sizes.has(old)) continue;
      this.bytes -= this.sizes.get(old)!;
      this.sizes.delete(old);
      this.trees.delete(old);
    }
  }
}
