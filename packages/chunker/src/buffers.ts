/**
 * Where the chunker's windows and segments come from.
 *
 * New buffers are uninitialized: zero-filling large buffers was what made chunking slow
 * (writing fresh zeroed memory runs at ~0.7 GB/s on these VMs, uninitialized at ~3.8).
 * Only bytes the chunker wrote are ever exposed (chunks are views below the filled
 * length), so skipping the fill leaks nothing.
 *
 * By default a buffer is never handed out twice, so chunk views stay valid for as long as
 * a consumer keeps them. With reuse on, a buffer whose chunks have all been consumed goes
 * back to a small free list (memory already faulted in: ~9 GB/s to fill).
 */
export class BufferSource {
  private readonly free: Uint8Array[] = [];

  constructor(
    readonly reuse: boolean,
    private readonly keep = 8,
  ) {}

  take(size: number): Uint8Array {
    for (let i = this.free.length - 1; i >= 0; i--) {
      if (this.free[i].length === size) return this.free.splice(i, 1)[0];
    }
    return Buffer.allocUnsafeSlow(size);
  }

  /** The caller is done with `buffer` and every chunk view into it. */
  give(buffer: Uint8Array): void {
    if (this.reuse && this.free.length < this.keep) this.free.push(buffer);
  }
}
