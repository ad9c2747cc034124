/**
 * vm: sources: every regular file or block device matching an absolute glob is a target
 * named by its path. Each is opened by content, not by name: a file starting with
 * qcow2's magic is read as the guest sees it (qemu-nbd), anything else raw. The glob is
 * expanded on every resolve, so a VM image created since the last run is picked up.
 */
import { hasGlobMagic } from '@hoard/protocol/agent';
import { SourceFailedError, SourceNotFoundError, SourceUnsupportedError } from './errors.js';
import { statError, statTarget } from './file.js';
import { expandGlob } from './glob.js';
import { openDetectedImage } from './image.js';
import type { SourceTarget } from './source.js';
import { skipWhenUnchanged } from './unchanged-image.js';

export async function resolveVmSource(glob: string, env: NodeJS.ProcessEnv): Promise<SourceTarget[]> {
  const spec = `vm:${glob}`;
  if (!hasGlobMagic(glob)) {
    // One literal path: it must exist and be an image.
    const info = await statTarget(spec, glob);
    return [vmTarget(glob, info.isBlockDevice(), env)];
  }
  let paths: string[];
  try {
    paths = await expandGlob(glob);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') {
      throw new SourceFailedError(
        spec,
        `${spec}: permission denied listing ${(err as NodeJS.ErrnoException).path ?? 'a directory'}; run the agent as a user that can read the image directories`,
        { program: 'readdir', cause: err },
      );
    }
    throw statError(spec, glob, err);
  }
  const targets: SourceTarget[] = [];
  for (const path of paths) {
    let info;
    try {
      info = await statTarget(spec, path);
    } catch (err) {
      // Matched, but not an image (a directory, a socket) or gone since the listing: not a target.
      if (err instanceof SourceUnsupportedError || err instanceof SourceNotFoundError) continue;
      throw err;
    }
    targets.push(vmTarget(path, info.isBlockDevice(), env));
  }
  return targets;
}

function vmTarget(path: string, blockDevice: boolean, env: NodeJS.ProcessEnv): SourceTarget {
  return skipWhenUnchanged(
    {
      name: path,
      kind: blockDevice ? 'block-device' : 'file',
      chunking: 'vm-image',
      open: (signal) => openDetectedImage(path, path, env, signal),
    },
    path,
  );
}
