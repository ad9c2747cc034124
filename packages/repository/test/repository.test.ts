import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsObjectStore } from '../dist/index.js';
import { repositorySuite } from './repository-suite.js';

// The same suite against S3 is repository-s3.test.ts: a file of its own, so the two run
// side by side when vitest runs files in parallel.
// os.tmpdir() is a real disk here (ext4): restores into it are sparse files.
repositorySuite('FsObjectStore', async () => {
  const root = await mkdtemp(join(tmpdir(), 'hoard-repo-'));
  return { store: await FsObjectStore.open(root, { create: true }), cleanup: () => rm(root, { recursive: true, force: true }) };
});
