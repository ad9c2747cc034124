/**
 * Builds the console into dist/, which the media server serves under /ui
 * (apps/media-server/src/http/console-assets.ts). esbuild compiles the JSX for Preact
 * itself, so no framework plugin is needed; every asset is bundled (no CDN: the console
 * works on a server with no way out).
 */
import { defineConfig } from 'vite';

export default defineConfig({
  root: import.meta.dirname,
  base: '/ui/',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // Hashed names under assets/ may be cached for good; index.html never is.
    assetsDir: 'assets',
    chunkSizeWarningLimit: 1024,
  },
});
