import { availableParallelism, cpus, totalmem } from 'node:os';

export function machine(): { cpu: string; cores: number; memory_gib: number; node: string } {
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: availableParallelism(),
    memory_gib: Math.round(totalmem() / 2 ** 30),
    node: process.version,
  };
}
