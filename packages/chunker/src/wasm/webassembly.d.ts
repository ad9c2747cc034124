// @types/node 20 does not declare the WebAssembly global (lib.dom does, and this package
// does not load lib.dom). Only what wasm-fastcdc.ts uses is declared.
declare namespace WebAssembly {
  class Module {
    constructor(bytes: Uint8Array);
  }
  class Memory {
    readonly buffer: ArrayBuffer;
    grow(pages: number): number;
  }
  class Instance {
    constructor(module: Module, imports: object);
    readonly exports: Record<string, unknown>;
  }
}
