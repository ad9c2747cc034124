/**
 * A WebAssembly module from its base64 bytes, typed without the WebAssembly global
 * (which @types/node 20 does not declare), so packages that use a kernel of their own
 * (the repository's lz4 decoder) need no declarations of it.
 */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}

const modules = new Map<string, WebAssembly.Module>();

/** A new instance (own memory) of the module in `base64`; the compiled module is cached. */
export function instantiateWasm(base64: string): { exports: Record<string, unknown>; memory: WasmMemory } {
  let module = modules.get(base64);
  if (!module) modules.set(base64, (module = new WebAssembly.Module(Buffer.from(base64, 'base64'))));
  const exports = new WebAssembly.Instance(module, {}).exports;
  return { exports, memory: exports.memory as WasmMemory };
}
