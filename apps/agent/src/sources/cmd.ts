/**
 * cmd: sources: a shell command's standard output. The command runs as
 * `/bin/bash -o pipefail -c COMMAND`, so a failing stage of a pipeline
 * (`pg_dump shop | zstd`) fails the backup, not only a failing last stage.
 */
import { existsSync } from 'node:fs';
import { SourceToolMissingError } from './errors.js';
import { spawnSource } from './process.js';
import type { OpenedSource, SourceTarget } from './source.js';

export const CMD_SHELL = '/bin/bash';

export function cmdTarget(command: string, env: NodeJS.ProcessEnv): SourceTarget {
  const name = `cmd:${command}`;
  return {
    name,
    kind: 'stream',
    chunking: 'file',
    async open(signal?: AbortSignal): Promise<OpenedSource> {
      if (!existsSync(CMD_SHELL)) throw new SourceToolMissingError(name, CMD_SHELL, 'bash');
      return spawnSource({
        target: name,
        program: 'the command',
        command: CMD_SHELL,
        args: ['-o', 'pipefail', '-c', command],
        env,
        packageHint: 'bash',
        signal,
      });
    },
  };
}
