/**
 * `hoard server start --config FILE`: the server package checks the file (and the flags);
 * a bad setting is one line per problem on stderr and exit 2 (usage), never a stack trace.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hoardCli, STACK_TRACE } from './helpers.js';
import { startServerProcess } from './server-processes.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoard-cli-server-config-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('hoard server start --config', () => {
  it('refuses a bad config file with exit 2, naming the file, the keys and the values', async () => {
    const config = join(dir, 'server.json');
    await writeFile(config, JSON.stringify({ storage: `fs:${join(dir, 'repo')}`, sessionIdleSeconds: 'ten', gcTimeZone: 'Mars/Olympus', colour: 'blue' }));
    const result = await hoardCli(['server', 'start', '--config', config, '--data', join(dir, 'data')]);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).not.toMatch(STACK_TRACE);
    expect(result.stderr.trim().split('\n')).toEqual([
      `hoard: --config ${config}: sessionIdleSeconds must be a number of seconds, 1 or more; got "ten"`,
      expect.stringMatching(new RegExp(`^--config ${config}: gcTimeZone must be an IANA time zone .*; got "Mars/Olympus"`)),
      expect.stringMatching(new RegExp(`^--config ${config}: unknown setting "colour"; known: listen, storage, `)),
    ]);
  });

  it('refuses a missing file, a bad flag and no storage with exit 2', async () => {
    const missing = await hoardCli(['server', 'start', '--config', join(dir, 'nope.yaml'), '--storage', `fs:${join(dir, 'repo')}`]);
    expect(missing.code, missing.stderr).toBe(2);
    expect(missing.stderr.trim()).toBe(`hoard: cannot read --config ${join(dir, 'nope.yaml')}: ENOENT`);
    const listen = await hoardCli(['server', 'start', '--storage', `fs:${join(dir, 'repo')}`, '--listen', 'localhost', '--data', join(dir, 'data')]);
    expect(listen.code, listen.stderr).toBe(2);
    expect(listen.stderr).toMatch(/^hoard: --listen must be HOST:PORT .*; got "localhost" \(no :PORT at the end\)\n$/);
    const none = await hoardCli(['server', 'start', '--data', join(dir, 'data')]);
    expect(none.code, none.stderr).toBe(2);
    expect(none.stderr.trim()).toBe('hoard: no storage: give --storage fs:DIR or s3://bucket/prefix');
  });

  it('starts from a YAML config, the flags over it', async () => {
    const config = join(dir, 'server.yaml');
    await writeFile(config, 'listen: 127.0.0.1:1\nrunLeaseSeconds: 5\nsessionIdleSeconds: 120\ngcSchedule: "off"\nlogLevel: error\n');
    const server = await startServerProcess({ extraArgs: ['--config', config] });
    try {
      // --listen 127.0.0.1:0 from the command line wins over the file's port 1
      expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(server.url).not.toMatch(/:1$/);
      const listed = await server.cli(['agent', 'list', '--json']);
      expect(listed.code, listed.stderr).toBe(0);
    } finally {
      await server.stop();
    }
  });
});
