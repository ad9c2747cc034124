/**
 * Issue 13, item 5: the server's config file is checked by the server, every key at load,
 * and each refusal names the file, the key, what was given and what is allowed.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkServerConfig,
  loadServerConfig,
  LOG_LEVELS,
  resolveServerSettings,
  SERVER_CONFIG_DEFAULTS,
  ServerConfigError,
  ServerConfigSchema,
  type ServerConfig,
} from '../dist/index.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoard-server-config-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let n = 0;
async function configFile(content: unknown, ext = 'json'): Promise<string> {
  const file = join(dir, `server-${n++}.${ext}`);
  await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

/** The error loadServerConfig throws for `content`. */
async function refusal(content: unknown, ext = 'json'): Promise<{ file: string; error: ServerConfigError }> {
  const file = await configFile(content, ext);
  const error = await loadServerConfig(file).then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(ServerConfigError);
  return { file, error: error as ServerConfigError };
}

const FULL: ServerConfig = {
  listen: '0.0.0.0:8421',
  storage: 'fs:/srv/hoard',
  data: '/var/lib/hoard/server2',
  tls: { cert: '/etc/hoard/tls/server.crt', key: '/etc/hoard/tls/server.key' },
  passphraseFile: '/etc/hoard/passphrase',
  encrypt: true,
  sessionIdleSeconds: 300,
  runLeaseSeconds: 30.5,
  quotaBytes: 10 * 2 ** 40,
  verifyUploads: false,
  logLevel: 'warn',
  gcSchedule: 'weekly',
  gcTimeZone: 'Europe/Berlin',
  gcGraceHours: 48,
};

const FULL_YAML = `# the same settings as FULL
listen: 0.0.0.0:8421
storage: fs:/srv/hoard
data: /var/lib/hoard/server2
tls:
  cert: /etc/hoard/tls/server.crt
  key: /etc/hoard/tls/server.key
passphraseFile: /etc/hoard/passphrase
encrypt: true
sessionIdleSeconds: 300
runLeaseSeconds: 30.5
quotaBytes: 10995116277760
verifyUploads: false
logLevel: warn
gcSchedule: weekly
gcTimeZone: Europe/Berlin
gcGraceHours: 48
`;

describe('a valid config', () => {
  it('loads every key from JSON and turns it into the server options', async () => {
    const file = await configFile(FULL);
    const config = await loadServerConfig(file);
    expect(config).toEqual(FULL);
    const settings = resolveServerSettings(config);
    expect(settings).toEqual({
      storage: '/srv/hoard',
      dataDir: '/var/lib/hoard/server2',
      encrypt: true,
      passphraseFile: '/etc/hoard/passphrase',
      server: {
        catalogDir: '/var/lib/hoard/server2/catalog',
        host: '0.0.0.0',
        port: 8421,
        tls: { certFile: '/etc/hoard/tls/server.crt', keyFile: '/etc/hoard/tls/server.key' },
        sessionIdleMs: 300_000,
        runLeaseMs: 30_500,
        verifyUploads: false,
        quotaBytes: 10 * 2 ** 40,
        gcSchedule: 'weekly',
        gcTimeZone: 'Europe/Berlin',
        gcGraceMs: 48 * 3_600_000,
        logLevel: 'warn',
      },
    });
  });

  it('reads YAML from a .yaml or .yml file, with the same result', async () => {
    expect(await loadServerConfig(await configFile(FULL_YAML, 'yaml'))).toEqual(FULL);
    expect(await loadServerConfig(await configFile(FULL_YAML, 'yml'))).toEqual(FULL);
    // JSON is YAML too
    expect(await loadServerConfig(await configFile(JSON.stringify(FULL), 'yaml'))).toEqual(FULL);
  });

  it('an empty object means the defaults; the command line wins over the file', async () => {
    const config = await loadServerConfig(await configFile({}));
    expect(config).toEqual({});
    const d = SERVER_CONFIG_DEFAULTS;
    const settings = resolveServerSettings(config, { storage: 'relative/repo' });
    expect(settings).toEqual({
      storage: resolve('relative/repo'),
      dataDir: d.data,
      encrypt: false,
      passphraseFile: undefined,
      server: {
        catalogDir: join(d.data, 'catalog'),
        host: '127.0.0.1',
        port: 8420,
        tls: undefined,
        sessionIdleMs: 600_000,
        runLeaseMs: 60_000,
        verifyUploads: true,
        quotaBytes: undefined,
        gcSchedule: '30 4 * * *',
        gcTimeZone: 'UTC',
        gcGraceMs: 24 * 3_600_000,
        logLevel: 'info',
      },
    });
    const over = resolveServerSettings(FULL, {
      listen: '[::1]:0',
      storage: 's3://backups/hoard',
      data: '/tmp/d',
      tlsCert: '/c.pem',
      tlsKey: '/k.pem',
      passphraseFile: '/p',
      encrypt: false,
      logLevel: 'debug',
    });
    expect(over.storage).toBe('s3://backups/hoard');
    expect(over.dataDir).toBe('/tmp/d');
    expect(over.encrypt).toBe(false);
    expect(over.passphraseFile).toBe('/p');
    expect(over.server).toMatchObject({
      host: '::1',
      port: 0,
      tls: { certFile: '/c.pem', keyFile: '/k.pem' },
      logLevel: 'debug',
      catalogDir: '/tmp/d/catalog',
    });
  });

  it('--adopt-state is a command-line decision: passed on when given, absent otherwise, never a config key', () => {
    expect(resolveServerSettings({}, { storage: '/x', adoptState: true }).server.adoptState).toBe(true);
    expect(resolveServerSettings({}, { storage: '/x' }).server).not.toHaveProperty('adoptState');
    expect(() => checkServerConfig({ adoptState: true }, '--config f')).toThrow(/unknown setting "adoptState"/);
  });

  it('objectLockDays (and objectLockMode) create the repository with S3 Object Lock; only on S3 storage', () => {
    expect(resolveServerSettings({ objectLockDays: 45 }, { storage: 's3://backups/p' }).objectLock).toEqual({ mode: 'COMPLIANCE', days: 45 });
    expect(resolveServerSettings({ objectLockDays: 2, objectLockMode: 'governance' }, { storage: 's3://backups/p' }).objectLock).toEqual({
      mode: 'GOVERNANCE',
      days: 2,
    });
    expect(resolveServerSettings({}, { storage: 's3://backups/p' })).not.toHaveProperty('objectLock');
    expect(() => resolveServerSettings({ objectLockDays: 45 }, { storage: '/srv/hoard' })).toThrow(
      /objectLockDays needs S3 storage \(s3:\/\/bucket\/prefix\) whose bucket has Object Lock; \/srv\/hoard is a directory/,
    );
    expect(() => resolveServerSettings({ objectLockMode: 'governance' }, { storage: 's3://backups/p' })).toThrow(/objectLockMode needs objectLockDays/);
  });

  it('gcSchedule "off" turns the scheduled GC off; a time zone is given back in its canonical spelling', () => {
    expect(resolveServerSettings({ gcSchedule: 'off', gcTimeZone: 'europe/berlin' }, { storage: '/x' }).server).toMatchObject({
      gcSchedule: null,
      gcTimeZone: 'Europe/Berlin',
    });
    expect(resolveServerSettings({ gcSchedule: '0 3 * * 1-5' }, { storage: '/x' }).server.gcSchedule).toBe('0 3 * * 1-5');
  });

  it('logLevel accepts exactly pino levels and silent', () => {
    expect([...LOG_LEVELS].sort()).toEqual([...Object.keys(pino.levels.values), 'silent'].sort());
    for (const level of LOG_LEVELS) expect(checkServerConfig({ logLevel: level }, 'f')).toEqual({ logLevel: level });
  });

  it('accepts a BOM, plain directories and the boundaries of each range', () => {
    expect(
      checkServerConfig(
        { storage: '/srv/hoard', listen: ':8420', runLeaseSeconds: 86_400, sessionIdleSeconds: 1, gcGraceHours: 0, quotaBytes: Number.MAX_SAFE_INTEGER },
        'f',
      ),
    ).toBeTruthy();
    expect(checkServerConfig({ listen: '127.0.0.1:65535', gcGraceHours: 8760, storage: 's3://bucket' }, 'f')).toBeTruthy();
    expect(resolveServerSettings({ listen: ':8420' }, { storage: '/x' }).server.host).toBe('0.0.0.0');
  });

  it('reads a file that starts with a byte order mark', async () => {
    expect(await loadServerConfig(await configFile(`\uFEFF${JSON.stringify({ listen: '127.0.0.1:1' })}`))).toEqual({ listen: '127.0.0.1:1' });
  });
});

/** [key, bad value, what the message says is allowed, extra detail it gives]. */
const REFUSALS: Array<[string, unknown, RegExp, RegExp?]> = [
  ['listen', 'localhost', /listen must be HOST:PORT with a port from 0 to 65535/, /no :PORT/],
  ['listen', '0.0.0.0:65536', /listen must be HOST:PORT/, /port 65536 is above 65535/],
  ['listen', '::1:8420', /listen must be HOST:PORT/, /IPv6 address goes in brackets/],
  ['listen', 8420, /listen must be HOST:PORT/],
  ['storage', 'ftp://host/dir', /storage must be fs:DIR \(a directory\) or s3:\/\/bucket\/prefix/, /unsupported scheme ftp:/],
  ['storage', 's3://x', /storage must be fs:DIR/, /bucket name "x" is not valid/],
  ['storage', 'fs:', /storage must be fs:DIR/, /fs: without a directory/],
  ['storage', '', /storage must be fs:DIR/],
  ['storage', ['fs:/a'], /storage must be fs:DIR/],
  ['data', '', /data must be a directory path/],
  ['data', 7, /data must be a directory path/],
  ['tls', 'server.pem', /tls must be an object \{"cert": FILE, "key": FILE\}/],
  ['tls', null, /tls must be an object/],
  ['tls', ['a', 'b'], /tls must be an object/],
  ['passphraseFile', true, /passphraseFile must be the path of a file whose first line is the repository passphrase/],
  ['passphraseFile', '', /passphraseFile must be the path/],
  ['encrypt', 'yes', /encrypt must be true or false/],
  ['encrypt', 1, /encrypt must be true or false/],
  ['sessionIdleSeconds', 'ten', /sessionIdleSeconds must be a number of seconds, 1 or more/],
  ['sessionIdleSeconds', 0, /sessionIdleSeconds must be a number of seconds, 1 or more/],
  ['sessionIdleSeconds', -5, /sessionIdleSeconds must be/],
  ['runLeaseSeconds', 0, /runLeaseSeconds must be a number of seconds from 1 to 86400/],
  ['runLeaseSeconds', 86_401, /runLeaseSeconds must be a number of seconds from 1 to 86400/],
  ['runLeaseSeconds', '60', /runLeaseSeconds must be/],
  ['quotaBytes', 0, /quotaBytes must be a whole number of bytes above 0/],
  ['quotaBytes', 1.5, /quotaBytes must be a whole number of bytes above 0/],
  ['quotaBytes', 2 ** 53, /quotaBytes must be a whole number of bytes/],
  ['quotaBytes', '1 TiB', /quotaBytes must be a whole number of bytes/],
  ['verifyUploads', 'false', /verifyUploads must be true or false/],
  ['verifyUploads', null, /verifyUploads must be true or false/],
  ['logLevel', 'verbose', /logLevel must be one of fatal, error, warn, info, debug, trace, silent/],
  ['logLevel', 'INFO', /logLevel must be one of/],
  [
    'gcSchedule',
    '30 4 * *',
    /gcSchedule must be a cron expression such as "30 4 \* \* \*", a calendar word \(hourly, daily, weekly, monthly, yearly, annually\) or "off"/,
    /5 fields/,
  ],
  ['gcSchedule', 'nightly', /gcSchedule must be a cron expression/, /not a calendar word/],
  ['gcSchedule', '0 0 30 2 *', /gcSchedule must be a cron expression/],
  ['gcSchedule', false, /gcSchedule must be a cron expression/],
  ['gcTimeZone', 'Europe/Berln', /gcTimeZone must be an IANA time zone such as UTC, Europe\/Berlin or America\/New_York/, /did you mean "Europe\/Berlin"/],
  ['gcTimeZone', 'CEST+2', /gcTimeZone must be an IANA time zone/],
  ['gcTimeZone', 1, /gcTimeZone must be an IANA time zone/],
  ['gcGraceHours', -1, /gcGraceHours must be a number of hours from 0 to 8760/],
  ['gcGraceHours', 8761, /gcGraceHours must be a number of hours from 0 to 8760/],
  ['gcGraceHours', '24h', /gcGraceHours must be a number of hours from 0 to 8760/],
  ['copyTargets', 'offsite', /copyTargets must be named copy targets for policies' copy-to/],
  ['objectLockDays', 0, /objectLockDays must be a whole number of days from 1 to 36500/],
  ['objectLockDays', 1.5, /objectLockDays must be a whole number of days from 1 to 36500/],
  ['objectLockMode', 'legal-hold', /objectLockMode must be compliance or governance/],
  ['notifications', 'mail me', /notifications must be an object of notification settings/],
];

describe('refusals name the file, the key, what was given and what is allowed', () => {
  it('covers every key of the schema', () => {
    expect(new Set(REFUSALS.map(([key]) => key))).toEqual(new Set(Object.keys(ServerConfigSchema.properties)));
  });

  for (const [key, value, allowed, detail] of REFUSALS) {
    it(`${key}: ${JSON.stringify(value)}`, async () => {
      const { file, error } = await refusal({ [key]: value });
      expect(error.problems).toHaveLength(1);
      const line = error.message;
      expect(line.startsWith(`--config ${file}: ${key} must be `), line).toBe(true);
      expect(line).toMatch(allowed);
      expect(line).toContain(`; got ${JSON.stringify(value)}`);
      if (detail) expect(line).toMatch(detail);
    });
  }

  it('a notification target is checked as its kind, naming the target and the field', async () => {
    const { file, error } = await refusal({
      notifications: {
        targets: {
          mail: { kind: 'smtp', host: 'mail.example.org', from: 'a@example.org' },
          hook: { kind: 'webhook', url: 'ftp://x' },
          page: { kind: 'pager' },
        },
      },
    });
    expect(error.problems).toEqual([
      `--config ${file}: notifications.targets.mail.to is missing: it must be recipients`,
      expect.stringMatching(
        /^--config .*: notifications\.targets\.hook\.url must be http:\/\/ or https:\/\/ URL that receives a POST of the event; got "ftp:\/\/x"$/,
      ),
      expect.stringMatching(/notifications\.targets\.page must be an object whose kind is "smtp", "webhook", "command"/),
    ]);
  });

  it('the example of the issue', async () => {
    const { file, error } = await refusal({ sessionIdleSeconds: 'ten' });
    expect(error.message).toBe(`--config ${file}: sessionIdleSeconds must be a number of seconds, 1 or more; got "ten"`);
    expect(error.name).toBe('ServerConfigError');
    expect(error.code).toBe('invalid_config');
    expect(error).toBeInstanceOf(Error);
  });

  it('tls needs both of cert and key as strings, and nothing else', async () => {
    let { file, error } = await refusal({ tls: { cert: '/c.pem' } });
    expect(error.message).toBe(`--config ${file}: tls.key is missing: it must be the path of the PEM private key file`);
    ({ file, error } = await refusal({ tls: { key: '/k.pem', cert: 5 } }));
    expect(error.message).toBe(`--config ${file}: tls.cert must be the path of the PEM certificate file; got 5`);
    ({ file, error } = await refusal({ tls: { cert: '/c', key: '/k', ca: '/ca' } }));
    expect(error.message).toBe(`--config ${file}: unknown setting "tls.ca"; known in tls: cert, key`);
  });

  it('an unknown key is refused with the known ones, and a close one suggested', async () => {
    let { file, error } = await refusal({ sessionIdleSecond: 600 });
    expect(error.message).toBe(
      `--config ${file}: unknown setting "sessionIdleSecond"; did you mean "sessionIdleSeconds"? known: ${Object.keys(ServerConfigSchema.properties).join(', ')}`,
    );
    ({ file, error } = await refusal({ colour: 'blue' }));
    expect(error.message).toMatch(/unknown setting "colour"; known: listen, storage, /);
    // Names of Object.prototype are not settings either
    for (const key of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      ({ error } = await refusal(`{"${key}": {}}`));
      expect(error.message).toContain(`unknown setting "${key}"`);
    }
  });

  it('every bad key is reported, one line each, in the order of the file', async () => {
    const { file, error } = await refusal({ listen: 'x', logLevel: 'loud', extra: 1, gcGraceHours: 24, quotaBytes: -1 });
    expect(error.problems).toEqual([
      expect.stringMatching(/: listen must be/),
      expect.stringMatching(/: logLevel must be/),
      expect.stringMatching(/: unknown setting "extra"/),
      expect.stringMatching(/: quotaBytes must be/),
    ]);
    expect(error.message.split('\n')).toEqual(error.problems);
    for (const line of error.problems) expect(line.startsWith(`--config ${file}: `)).toBe(true);
  });

  it('gcTimeZone is checked even when gcSchedule is off', async () => {
    const { error } = await refusal({ gcSchedule: 'off', gcTimeZone: 'Mars/Olympus' });
    expect(error.message).toMatch(/gcTimeZone must be an IANA time zone .*; got "Mars\/Olympus"/);
  });

  it('a file that is not an object, not JSON, not YAML or not there', async () => {
    let { file, error } = await refusal([1, 2]);
    expect(error.message).toBe(`--config ${file} must hold a JSON object of settings; got [1,2]`);
    ({ file, error } = await refusal('null'));
    expect(error.message).toBe(`--config ${file} must hold a JSON object of settings; got null`);
    ({ file, error } = await refusal('{"listen": '));
    expect(error.message).toMatch(new RegExp(`^--config ${file} is not valid JSON: `));
    ({ file, error } = await refusal('', 'yaml'));
    expect(error.message).toBe(`--config ${file} must hold a YAML mapping of settings; got null`);
    ({ file, error } = await refusal('- a\n- b\n', 'yml'));
    expect(error.message).toBe(`--config ${file} must hold a YAML mapping of settings; got ["a","b"]`);
    ({ file, error } = await refusal('listen: [unclosed\n', 'yaml'));
    expect(error.message).toMatch(new RegExp(`^--config ${file} is not valid YAML: `));
    expect(error.message).not.toContain('\n');
    ({ error } = await refusal('gcSchedule: */30 * * * *\n', 'yaml'));
    expect(error.message).toMatch(/is not valid YAML: .*put cron expressions in quotes/);
    ({ error } = await refusal('listen: !host 0.0.0.0:8420\n', 'yaml'));
    expect(error.message).toMatch(/is not valid YAML: .*tag/i);
    ({ file, error } = await refusal('a: 1\na: 2\n', 'yaml'));
    expect(error.message).toMatch(/is not valid YAML: .*unique/i);
    // YAML's own refusals: a value of the wrong type reads the same as in JSON
    ({ file, error } = await refusal('sessionIdleSeconds: ten\n', 'yaml'));
    expect(error.message).toBe(`--config ${file}: sessionIdleSeconds must be a number of seconds, 1 or more; got "ten"`);
    ({ error } = await refusal('gcGraceHours: .nan\n', 'yaml'));
    expect(error.message).toMatch(/gcGraceHours must be a number of hours from 0 to 8760; got NaN$/);
    const missing = join(dir, 'missing.json');
    await expect(loadServerConfig(missing)).rejects.toThrow(new ServerConfigError([`cannot read --config ${missing}: ENOENT`]));
  });

  it('a long value is shortened in the message', async () => {
    const { error } = await refusal({ data: { blob: 'x'.repeat(500) } });
    expect(error.message.length).toBeLessThan(250);
    expect(error.message).toMatch(/…$/);
  });
});

describe('the command line', () => {
  it('refuses bad flags naming the flag', () => {
    const problems = (overrides: Parameters<typeof resolveServerSettings>[1]): readonly string[] => {
      try {
        resolveServerSettings({}, overrides, '--config /etc/hoard/server.json');
      } catch (err) {
        expect(err).toBeInstanceOf(ServerConfigError);
        return (err as ServerConfigError).problems;
      }
      return [];
    };
    expect(problems({ storage: '/x', listen: 'nowhere' })).toEqual([
      expect.stringMatching(/^--listen must be HOST:PORT .*; got "nowhere" \(no :PORT at the end\)$/),
    ]);
    expect(problems({ storage: '/x', logLevel: 'loud' })).toEqual([expect.stringMatching(/^--log-level must be one of fatal, .*; got "loud"$/)]);
    expect(problems({ storage: 'gopher://x' })).toEqual([expect.stringMatching(/^--storage must be fs:DIR .*unsupported scheme gopher:/)]);
    expect(problems({ storage: '/x', tlsCert: '' })).toEqual([
      expect.stringMatching(/^--tls-cert must be the path of the PEM certificate file; got ""/),
      expect.stringMatching(/^TLS needs both/),
    ]);
    expect(problems({})).toEqual(['no storage: give --storage fs:DIR or s3://bucket/prefix, or "storage" in --config /etc/hoard/server.json']);
    expect(problems({ storage: '/x', tlsKey: '/k' })).toEqual([
      'TLS needs both a certificate and a key: --tls-cert and --tls-key, or "tls": {"cert", "key"} in --config /etc/hoard/server.json',
    ]);
    // Overrides complete the file's settings: the key from the flag, the certificate from the file
    expect(resolveServerSettings({ storage: '/x', tls: { cert: '/c', key: '/k' } }, { tlsKey: '/k2' }).server.tls).toEqual({ certFile: '/c', keyFile: '/k2' });
  });

  it('refuses a config that did not come through loadServerConfig', () => {
    expect(() => resolveServerSettings({ runLeaseSeconds: -1 } as never, { storage: '/x' })).toThrow(/runLeaseSeconds must be/);
  });
});

describe('properties', () => {
  const known = Object.keys(ServerConfigSchema.properties);
  const anyValue = fc.oneof(fc.jsonValue(), fc.constantFrom(...known.map((k) => (FULL as Record<string, unknown>)[k])), fc.double(), fc.string());
  /** Objects with mostly known keys, so that the checks of each key are reached. */
  const configLike = fc.dictionary(fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...known) }, { weight: 1, arbitrary: fc.string() }), anyValue, {
    maxKeys: 8,
  });

  it('random values never throw anything but ServerConfigError, and what passes is what the schema accepts', () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), configLike, fc.anything()), (value) => {
        let config: unknown;
        try {
          config = checkServerConfig(value, '--config f.json');
        } catch (err) {
          if (!(err instanceof ServerConfigError)) throw err;
          expect(err.problems.length).toBeGreaterThan(0);
          for (const line of err.problems) expect(line.startsWith('--config f.json')).toBe(true);
          return;
        }
        expect(config).toBe(value);
        // what passes also starts: resolving it throws nothing else either
        try {
          resolveServerSettings(config as never, { storage: '/x' });
        } catch (err) {
          if (!(err instanceof ServerConfigError)) throw err;
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('random file contents never throw anything but ServerConfigError', async () => {
    const file = join(dir, 'random.json');
    const yamlFile = join(dir, 'random.yaml');
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.json(),
          configLike.map((o) => JSON.stringify(o)),
          fc.string(),
        ),
        async (text) => {
          for (const f of [file, yamlFile]) {
            await writeFile(f, text);
            await loadServerConfig(f).catch((err: unknown) => {
              if (!(err instanceof ServerConfigError)) throw err;
            });
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('docs/operations.md', () => {
  it('documents every key of the schema in the server configuration reference', async () => {
    const doc = await readFile(new URL('../../../docs/operations.md', import.meta.url), 'utf8');
    const section = doc.slice(doc.indexOf('## Server configuration reference'), doc.indexOf('\n## ', doc.indexOf('## Server configuration reference') + 1));
    for (const key of Object.keys(ServerConfigSchema.properties)) expect(section).toMatch(new RegExp(`^\\| \`${key}[\`.]`, 'm'));
  });

  it('its YAML example loads', async () => {
    const doc = await readFile(new URL('../../../docs/operations.md', import.meta.url), 'utf8');
    const example = /## Server configuration reference[\s\S]*?```yaml\n([\s\S]*?)```/.exec(doc)![1];
    const config = await loadServerConfig(await configFile(example, 'yaml'));
    expect(resolveServerSettings(config).server).toMatchObject({ host: '0.0.0.0', port: 8420, gcSchedule: '0 3 * * *', gcTimeZone: 'Europe/Berlin' });
  });
});
