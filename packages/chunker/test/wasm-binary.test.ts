import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

it('the committed WebAssembly binary is what fastcdc.wat compiles to', async () => {
  const script = fileURLToPath(new URL('../scripts/build-wasm.mjs', import.meta.url));
  const { stdout } = await promisify(execFile)(process.execPath, [script, '--check']);
  expect(stdout).toMatch(/matches/);
});
