/**
 * `hoard run` against a real server and agent: what it prints, and that its start-up stays
 * lean (it loads neither TypeBox nor the chunker and its native hash; a scheduler starts
 * one such process per run).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { noise, STACK_TRACE } from './helpers.js';
import { startServerProcess, type ServerProcess } from './server-processes.js';

/** An --import module that writes the URL of every module the process loads to `log`. */
async function moduleLogger(dir: string, log: string): Promise<string> {
  const hooks = join(dir, 'hooks.mjs');
  await writeFile(
    hooks,
    `import { appendFileSync } from 'node:fs';\nexport async function load(url, context, next) { appendFileSync(${JSON.stringify(log)}, url + '\\n'); return next(url, context); }\n`,
  );
  const register = join(dir, 'register.mjs');
  await writeFile(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
  return register;
}

describe('hoard run', () => {
  let server: ServerProcess;
  let work: string;
  let file: string;

  beforeAll(async () => {
    server = await startServerProcess();
    await server.addAgent('a1');
    work = await mkdtemp(join(tmpdir(), 'hoard-run-cmd-'));
    file = join(work, 'small.bin');
    await writeFile(file, noise(7, 256 * 1024));
  });
  afterAll(async () => {
    await server?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('--json prints the finished run with every field of a run, null where the server left one out', async () => {
    const r = await server.cli(['run', '--agent', 'a1', '--job', 'small', '--source', `file:${file}`, '--json']);
    expect(r.stderr).not.toMatch(STACK_TRACE);
    expect(r.code).toBe(0);
    const run = JSON.parse(r.stdout) as Record<string, unknown> & { targets: Record<string, unknown>[] };
    expect(run.state).toBe('succeeded');
    expect(run.job).toBe('small');
    // Fields a finished manual run does not have are there as null, not left out.
    for (const key of ['hooks', 'restore', 'progress', 'cancelRequestedAt', 'bandwidth', 'maxConcurrentRuns', 'leaseMs']) expect(run).toHaveProperty(key, null);
    const target = run.targets[0]!;
    expect(target.ok).toBe(true);
    expect(target).toHaveProperty('error', null);
    expect(target).toHaveProperty('restored', null);
    expect((target.totals as { bytesRead: number }).bytesRead).toBe(256 * 1024);
  });

  it('without --json prints the result table', async () => {
    const r = await server.cli(['run', '--agent', 'a1', '--job', 'small', '--source', `file:${file}`]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^run \S+: job small on agent a1: succeeded$/m);
    const row = r.stdout.split('\n').find((line) => line.startsWith(file));
    expect(row).toMatch(/\s+ok\s+256 KiB\s/);
  });

  it('loads neither TypeBox nor the chunker package index nor the repository to queue a run and wait for it', async () => {
    const log = join(work, 'modules.log');
    const register = await moduleLogger(work, log);
    const r = await server.cli(['run', '--agent', 'a1', '--job', 'small', '--source', `file:${file}`, '--json'], {
      NODE_OPTIONS: `--import ${pathToFileURL(register).href}`,
    });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).state).toBe('succeeded');
    const loaded = (await readFile(log, 'utf8')).trim().split('\n');
    // The log works: the command's own module is in it.
    expect(loaded.some((url) => url.endsWith('/commands/run.js'))).toBe(true);
    const heavy = loaded.filter((url) => /typebox|\/chunker\/dist\/index\.js|blake-hash|\/repository\/dist\/index\.js|undici/.test(url));
    expect(heavy).toEqual([]);
  });

  it('a job name that breaks the naming rule is a usage error naming the rule, before anything is queued', async () => {
    const r = await server.cli(['run', '--agent', 'a1', '--job', 'bad name!', '--source', `file:${file}`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^hoard: invalid job name "bad name!": use 1-128 letters/m);
    expect(r.stderr).not.toMatch(STACK_TRACE);
    const runs = await server.cli(['job', 'list', '--json']);
    expect(runs.stdout).not.toContain('bad name!');
  });

  it("an agent the server does not know: the server's message, exit status of a failed request, no stack trace", async () => {
    const r = await server.cli(['run', '--agent', 'nobody', '--job', 'small', '--source', `file:${file}`]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/^hoard: .*nobody/m);
    expect(r.stderr).not.toMatch(STACK_TRACE);
  });
});
