import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  nextPolicyRuns,
  nextVerifyRuns,
  parsePolicyDocument,
  PolicyError,
  policyRetentionRules,
  RequestError,
  serializePolicies,
  validatePolicy,
  type Policy,
  type PolicyProblem,
} from '../dist/index.js';

const VM_HOST = `
name: kvm-01-images
description: every VM image on kvm-01
sources:
  - agents: [kvm-01]
    specs:
      - vm:/var/lib/libvirt/images/*.qcow2
schedule:
  timezone: Europe/Berlin
  full: "0 1 * * SUN"
  incremental: "0 1 * * MON-SAT"
retention:
  keep-within: 2m
  keep-last: 3
`;

function problems(text: string, file = 'p.yaml'): PolicyProblem[] {
  try {
    parsePolicyDocument(text, { file });
  } catch (err) {
    expect(err).toBeInstanceOf(PolicyError);
    expect(err).toBeInstanceOf(RequestError);
    expect((err as PolicyError).status).toBe(400);
    expect((err as PolicyError).name).toBe('PolicyError');
    return [...(err as PolicyError).problems];
  }
  throw new Error('parsed');
}

function only(text: string): PolicyProblem {
  const list = problems(text);
  expect(list, JSON.stringify(list)).toHaveLength(1);
  return list[0];
}

const base = (patch: string): string => `
name: p
sources:
  - agent: a1
    specs: ["file:/x"]
schedule:
  timezone: UTC
  full: daily
${patch}`;

describe('parsing', () => {
  it('reads a policy with defaults filled in', () => {
    const [p] = parsePolicyDocument(VM_HOST);
    expect(p.name).toBe('kvm-01-images');
    expect(p.sources).toEqual([{ agents: ['kvm-01'], specs: ['vm:/var/lib/libvirt/images/*.qcow2'] }]);
    expect(p.schedule.timeZone).toBe('Europe/Berlin');
    expect(p.schedule.full.expression).toBe('0 1 * * SUN');
    expect(p.retention).toEqual({ keepLast: 3, keepWithin: { text: '2m', years: 0, months: 2, weeks: 0, days: 0, hours: 0 } });
    // planRetention's rules for the policy: the retention block in the schedule's time zone.
    expect(policyRetentionRules(p)).toEqual({ ...p.retention, timeZone: 'Europe/Berlin' });
    expect(policyRetentionRules({ ...p, retention: undefined })).toBeUndefined();
    expect(p.store).toEqual({ scope: 'global', compression: 'zstd:3', encryption: false });
    expect(p.limits).toEqual({});
    expect(p.verify.structure?.expression).toBe('daily');
    expect(p.verify.readData?.expression).toBe('weekly');
    expect(p.verify.subset).toBe(10);
  });

  it('reads policies: lists, YAML multi-documents and JSON', () => {
    const two = `policies:\n${[VM_HOST, VM_HOST.replace('kvm-01-images', 'second')].map((d) => d.trim().replace(/^/gm, '    ').replace(/^ {4}/, '  - ')).join('\n')}\n`;
    expect(parsePolicyDocument(two).map((p) => p.name)).toEqual(['kvm-01-images', 'second']);
    const multi = `${VM_HOST}\n---\n${VM_HOST.replace('kvm-01-images', 'second')}\n---\n`;
    expect(parsePolicyDocument(multi).map((p) => p.name)).toEqual(['kvm-01-images', 'second']);
    const [p] = parsePolicyDocument(VM_HOST);
    const json = serializePolicies(p, { format: 'json' });
    expect(parsePolicyDocument(json, { file: 'p.json' })).toEqual([p]);
  });

  it('accepts hooks, limits, store and verify settings', () => {
    const [p] = parsePolicyDocument(
      base(`
store: {scope: job, compression: none, encryption: true}
limits:
  max-concurrent-jobs-per-agent: 2
  bandwidth: 200Mbit/s
  run-window: "22:00-06:00"
verify: {structure: "0 3 * * *", read-data: off, }
`).replace('specs: ["file:/x"]', 'specs: ["file:/x"]\n    hooks: {pre: "virsh domfsfreeze web", post: "virsh domfsthaw web"}'),
    );
    expect(p.sources[0].hooks).toEqual({ pre: 'virsh domfsfreeze web', post: 'virsh domfsthaw web' });
    expect(p.store).toEqual({ scope: 'job', compression: 'none', encryption: true });
    expect(p.limits.maxConcurrentJobsPerAgent).toBe(2);
    expect(p.limits.bandwidth).toEqual({ text: '200Mbit/s', bytesPerSecond: 25_000_000 });
    expect(p.limits.runWindow).toEqual({ text: '22:00-06:00', start: 22 * 60, end: 6 * 60 });
    expect(p.verify.readData).toBeNull();
    expect(p.verify.structure?.cron).toBe('0 3 * * *');
  });
});

describe('validation messages', () => {
  const cases: [string, string, string][] = [
    ['unknown key, kebab hint', base('retention: {keepDaily: 7}'), 'retention.keepDaily: unknown key "keepDaily"; did you mean "keep-daily"?'],
    ['unknown key, typo hint', base('retention: {keep-dayly: 7}'), 'did you mean "keep-daily"?'],
    ['unknown key, no close match', base('colour: blue'), 'unknown key "colour"; expected one of name, description'],
    ['bad cron field', base('').replace('full: daily', 'full: "0 1 * * 8"'), 'schedule.full: "0 1 * * 8": day-of-week must be 0-7'],
    ['bad minute', base('').replace('full: daily', 'full: "61 * * * *"'), '"61 * * * *": minute must be 0-59'],
    ['impossible date', base('').replace('full: daily', 'full: "0 0 30 2 *"'), 'never fires: February has no day 30'],
    ['schedule not a string', base('').replace('full: daily', 'full: 5'), 'schedule.full: must be a cron expression in quotes'],
    [
      'bad time zone',
      base('').replace('timezone: UTC', 'timezone: Europe/Berln'),
      'schedule.timezone: unknown time zone "Europe/Berln"; did you mean "Europe/Berlin"?',
    ],
    ['missing time zone', base('').replace('  timezone: UTC\n', ''), 'schedule: has no timezone'],
    [
      'missing full',
      base('').replace('  full: daily\n', 'incremental: daily\n').replace('incremental: daily', '  incremental: daily'),
      'schedule: has no full schedule',
    ],
    [
      'incremental equals full',
      base('').replace('full: daily', 'full: daily\n  incremental: "0 0 * * *"'),
      'schedule.incremental: fires exactly when full does',
    ],
    ['bad name', base('').replace('name: p', 'name: "my policy"'), 'name: name must be 1-128 characters'],
    ['missing name', base('').replace('name: p\n', ''), 'the policy has no name'],
    ['bad agent', base('').replace('agent: a1', 'agent: KVM'), 'sources[0].agent: agent must be 1-63 characters of lower-case'],
    ['agent and agents', base('').replace('agent: a1', 'agent: a1\n    agents: [a2]'), 'give either agent (one name) or agents (a list), not both'],
    ['no agent', base('').replace('- agent: a1\n    specs', '- specs'), 'sources[0]: names no agent'],
    ['bad spec', base('').replace('file:/x', '/var/lib/x.img'), 'sources[0].specs[0]: a source spec needs a type: write file:/var/lib/x.img'],
    ['duplicate spec', base('').replace('["file:/x"]', '["file:/x", " file:/x"]'), 'sources[0].specs[1]: "file:/x" is listed twice'],
    [
      'agent in two entries',
      base('').replace('specs: ["file:/x"]', 'specs: ["file:/x"]\n  - agent: a1\n    specs: ["file:/y"]'),
      'sources[1].agent: agent a1 already appears in sources[0]',
    ],
    ['empty hook', base('').replace('specs: ["file:/x"]', 'specs: ["file:/x"]\n    hooks: {pre: ""}'), 'sources[0].hooks.pre: must be a non-empty string'],
    ['unknown hook', base('').replace('specs: ["file:/x"]', 'specs: ["file:/x"]\n    hooks: {before: x}'), 'unknown key "before"'],
    ['no sources', base('').replace(/sources:[\s\S]*?schedule/, 'schedule'), 'the policy has no sources'],
    ['empty retention', base('retention: {}'), 'retention: has no rules; give at least one of keep-last'],
    [
      'zero keep',
      base('retention: {keep-daily: 0}'),
      'retention.keep-daily: keep-daily must be a whole number from 1 to 1000000; got number 0; omit it instead of writing 0',
    ],
    ['quoted number', base('retention: {keep-last: "7"}'), '(write the number without quotes)'],
    ['fractional keep', base('retention: {keep-hourly: 1.5}'), 'keep-hourly must be a whole number'],
    ['keep-within words', base('retention: {keep-within: 2 months}'), 'retention.keep-within: "2 months": write 2m'],
    ['keep-within minutes', base('retention: {keep-within: 30min}'), 'retention.keep-within: "30min": durations have no minutes or seconds ("m" means months)'],
    ['keep-within garbage', base('retention: {keep-within: soon}'), 'retention.keep-within: "soon": use a whole number followed by h, d, w, m or y'],
    ['store scope', base('store: {scope: tenant}'), 'store.scope: must be global'],
    ['compression', base('store: {compression: gzip}'), 'store.compression: must be zstd[:LEVEL] (LEVEL 1-19), lz4 or none; got string "gzip"'],
    ['compression level', base('store: {compression: "zstd:20"}'), 'store.compression: must be zstd[:LEVEL] (LEVEL 1-19), lz4 or none; got string "zstd:20"'],
    ['encryption', base('store: {encryption: "yes"}'), 'store.encryption: must be true or false'],
    [
      'concurrency',
      base('limits: {max-concurrent-jobs-per-agent: 0}'),
      'limits.max-concurrent-jobs-per-agent: max-concurrent-jobs-per-agent must be a whole number from 1',
    ],
    ['ambiguous bandwidth', base('limits: {bandwidth: 50mb/s}'), '"mb" is ambiguous; write MB/s for bytes or Mbit/s for bits'],
    ['bandwidth without /s', base('limits: {bandwidth: 50MB}'), 'write the rate per second with "/s", e.g. 50MB/s'],
    ['bandwidth unit', base('limits: {bandwidth: 5furlong/s}'), 'unknown unit "furlong"'],
    ['run window syntax', base('limits: {run-window: "10pm-6am"}'), 'is not a time 00:00-23:59'],
    ['empty run window', base('limits: {run-window: "22:00-22:00"}'), 'is empty (start equals end)'],
    [
      'schedule outside run window',
      base('limits: {run-window: "22:00-06:00"}').replace('full: daily', 'full: "0 12 * * *"'),
      'limits.run-window: schedule.full ("0 12 * * *") never fires inside run-window 22:00-06:00',
    ],
    ['verify schedule', base('verify: {structure: "0 25 * * *"}'), 'verify.structure: "0 25 * * *": hour must be 0-23'],
    ['verify subset', base('verify: {subset: 150%}'), 'verify.subset: must be more than 0% and at most 100%'],
    ['subset without read-data', base('verify: {read-data: off, subset: 5%}'), 'verify.subset: applies to read-data checks, which are off'],
    ['a list at the top', '- name: x\n', 'put this list under policies:'],
    ['extra key next to policies', `policies: []\nextra: 1\n`, 'a file with policies: holds nothing else'],
    ['empty document', '', 'the document holds no policy'],
    ['unquoted cron', base('').replace('full: daily', 'full: */5 * * * *'), 'put cron expressions in quotes'],
    ['duplicate key', base('').replace('name: p', 'name: p\nname: q'), 'YAML syntax: Map keys must be unique'],
    ['duplicate policy', `${base('')}\n---\n${base('')}`, 'policy "p" is defined twice'],
  ];
  it.each(cases)('%s', (_, text, message) => {
    const list = problems(text);
    expect(list.map((p) => `${p.path}: ${p.message}`).join('\n')).toContain(message);
  });

  it('collects every problem, with file, line and column', () => {
    const text = `name: bad name
sources:
  - agent: KVM
    specs: ["/var/x"]
schedule:
  timezone: Europe/Berln
  full: "0 1 * * 8"
  incremental: "61 * * * *"
retention:
  keepDaily: 7
`;
    let error: PolicyError | undefined;
    try {
      parsePolicyDocument(text, { file: 'bad.yaml' });
    } catch (err) {
      error = err as PolicyError;
    }
    expect(error).toBeInstanceOf(PolicyError);
    expect(error!.problems.map((p) => [p.path, p.line])).toEqual([
      ['name', 1],
      ['sources[0].agent', 3],
      ['sources[0].specs[0]', 4],
      ['schedule.timezone', 6],
      ['schedule.full', 7],
      ['schedule.incremental', 8],
      ['retention.keepDaily', 10],
    ]);
    expect(error!.problems.every((p) => p.file === 'bad.yaml')).toBe(true);
    expect(error!.message).toContain('invalid policy, 7 problems:');
    expect(error!.message).toContain('bad.yaml:7:9: schedule.full: "0 1 * * 8": day-of-week must be 0-7');
    expect(error!.details).toEqual({ problems: error!.problems });
  });

  it('locates problems inside policies: lists and JSON', () => {
    const text = JSON.stringify({ policies: [{ name: 'a' }] }, null, 2);
    const list = problems(text, 'p.json');
    expect(list.map((p) => p.message.split(';')[0])).toEqual(['the policy has no sources', 'the policy has no schedule']);
    expect(list.map((p) => p.path)).toEqual(['policies[0]', 'policies[0]']);
    expect(list[0].line).toBe(3);
    expect(only('name: [x\n').message).toContain('YAML syntax');
    expect(problems('{"name": "x",}', 'p.json')[0].message).toContain('not valid JSON');
  });

  it('validatePolicy checks objects from any source (an API body)', () => {
    expect(() => validatePolicy({ name: 'x' })).toThrow(PolicyError);
    expect(() => validatePolicy('x')).toThrow(/must be a mapping/);
    const p = validatePolicy({ name: 'x', sources: [{ agents: ['a'], specs: ['cmd:true'] }], schedule: { timezone: 'UTC', full: 'daily' } });
    expect(p.name).toBe('x');
  });
});

// --- round trips --------------------------------------------------------------------------

const name = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,20}$/);
const agent = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,10}$/);
const spec = fc.oneof(
  fc.stringMatching(/^\/[a-z]{1,8}(\/[a-z0-9]{1,8}){0,2}$/).map((p) => `file:${p}`),
  fc.stringMatching(/^\/[a-z]{1,8}$/).map((p) => `vm:${p}/*.qcow2`),
  fc.stringMatching(/^[a-z]{1,8}\*?$/).map((p) => `libvirt:${p}`),
  fc.stringMatching(/^[a-z]{1,8}$/).map((db) => `postgres://backup@db1:5432/${db}`),
  fc.stringMatching(/^[a-z]{1,8}$/).map((db) => `mysql://backup@db2/${db}`),
  fc.stringMatching(/^[a-z][a-z -]{0,20}$/).map((c) => `cmd:${c}`),
);
const cronText = fc.constantFrom(
  '0 1 * * 0',
  '0 1 * * MON-SAT',
  '*/15 * * * *',
  '30 2 1,15 * *',
  '0 22 * JAN-MAR fri',
  'daily',
  'weekly',
  'monthly',
  'hourly',
  '0 0 29 2 *',
);
const hook = fc.stringMatching(/^[a-z][a-z0-9 ./-]{0,30}$/);
const count = fc.integer({ min: 1, max: 1000 });

const policyDoc = fc
  .record(
    {
      name,
      description: fc.string({ minLength: 1, maxLength: 40 }).filter((s) => s.trim() !== '' && !s.includes('\0')),
      sources: fc.uniqueArray(
        fc.record({
          agents: fc.uniqueArray(agent, { minLength: 1, maxLength: 3 }),
          specs: fc.uniqueArray(spec, { minLength: 1, maxLength: 3 }),
          hooks: fc.option(fc.record({ pre: hook, post: hook }, { requiredKeys: [] }), { nil: undefined }),
        }),
        {
          minLength: 1,
          maxLength: 3,
          selector: (s) => s.agents[0],
        },
      ),
      schedule: fc.record({
        timezone: fc.constantFrom('UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata'),
        full: cronText,
        incremental: fc.option(cronText, { nil: undefined }),
      }),
      retention: fc.record(
        {
          'keep-last': count,
          'keep-hourly': count,
          'keep-daily': count,
          'keep-weekly': count,
          'keep-monthly': count,
          'keep-yearly': count,
          'keep-within': fc.constantFrom('2m', '14d', '3w', '1y', '36h', '1y6m', '2M', '1Y2W'),
        },
        { requiredKeys: ['keep-last'] },
      ),
      store: fc.record(
        { scope: fc.constantFrom('global', 'job'), compression: fc.constantFrom('zstd', 'zstd:1', 'zstd:19', 'lz4', 'none'), encryption: fc.boolean() },
        { requiredKeys: [] },
      ),
      limits: fc.record(
        {
          'max-concurrent-jobs-per-agent': fc.integer({ min: 1, max: 16 }),
          bandwidth: fc.constantFrom('50MB/s', '200Mbit/s', '1.5GiB/s', '800 kB/s'),
          'run-window': fc.constantFrom('00:00-24:00', '0:00-23:59'),
        },
        { requiredKeys: [] },
      ),
      verify: fc.record(
        {
          structure: fc.constantFrom('daily', 'off', '0 4 * * *'),
          'read-data': fc.constantFrom('weekly', 'monthly', '0 5 * * SUN'),
          subset: fc.constantFrom('10%', '2.5%', '100%'),
        },
        { requiredKeys: [] },
      ),
    },
    { requiredKeys: ['name', 'sources', 'schedule'] },
  )
  .map((d) => {
    // Agents must be unique across entries as well as within one.
    const seen = new Set<string>();
    const sources = d.sources
      .map((s) => ({ ...s, agents: s.agents.filter((a) => !seen.has(a) && (seen.add(a), true)) }))
      .filter((s) => s.agents.length > 0)
      .map((s) => (s.hooks === undefined || Object.keys(s.hooks).length === 0 ? { agents: s.agents, specs: s.specs } : s));
    const schedule =
      d.schedule.incremental === undefined || d.schedule.incremental === d.schedule.full
        ? { timezone: d.schedule.timezone, full: d.schedule.full }
        : d.schedule;
    return { ...d, sources, schedule };
  });

describe('round trips', () => {
  it('parse -> serialize -> parse is the identity, in YAML and JSON', () => {
    fc.assert(
      fc.property(policyDoc, fc.constantFrom('yaml' as const, 'json' as const), (doc, format) => {
        const [p] = parsePolicyDocument(JSON.stringify(doc), { format: 'json' });
        const text = serializePolicies(p, { format });
        const [again] = parsePolicyDocument(text, { format });
        expect(again).toEqual(p);
        expect(serializePolicies(again, { format })).toBe(text);
      }),
      { numRuns: 200 },
    );
  });

  it('several policies serialize as policies: and come back in order', () => {
    fc.assert(
      fc.property(fc.uniqueArray(policyDoc, { minLength: 2, maxLength: 4, selector: (d) => d.name }), (docs) => {
        const policies: Policy[] = docs.map((d) => validatePolicy(d));
        const text = serializePolicies(policies);
        expect(text.startsWith('policies:')).toBe(true);
        expect(parsePolicyDocument(text)).toEqual(policies);
      }),
      { numRuns: 50 },
    );
  });

  it('redactSecrets hides URL passwords', () => {
    const p = validatePolicy({
      name: 'db',
      sources: [{ agent: 'db-01', specs: ['postgres://backup:hunter2@db1/shop'] }],
      schedule: { timezone: 'UTC', full: 'daily' },
    });
    expect(serializePolicies(p)).toContain('hunter2');
    const shown = serializePolicies(p, { redactSecrets: true });
    expect(shown).not.toContain('hunter2');
    expect(shown).toContain('postgres://backup:***@db1/shop');
  });

  it('drill: postgres-url and query round-trip; the URL password is redacted; both are required and checked', () => {
    const p = parsePolicyDocument(base('drill:\n  postgres-url: postgres://hoard:s3cret@scratch:5432/postgres\n  query: select count(*) from accounts\n'))[0]!;
    expect(p.drill).toEqual({ postgresUrl: 'postgres://hoard:s3cret@scratch:5432/postgres', query: 'select count(*) from accounts' });
    expect(parsePolicyDocument(serializePolicies(p))[0]).toEqual(p);
    const shown = serializePolicies(p, { redactSecrets: true });
    expect(shown).not.toContain('s3cret');
    expect(shown).toContain('postgres-url: postgres://hoard:***@scratch:5432/postgres');
    expect(only(base('drill:\n  query: select 1\n')).message).toMatch(/has no postgres-url; add postgres-url: postgres:\/\//);
    expect(only(base('drill:\n  postgres-url: mysql://x@y/z\n  query: select 1\n'))).toMatchObject({
      path: 'drill.postgres-url',
      message: expect.stringMatching(/must be a postgres:\/\/ URL/),
    });
    expect(only(base('drill:\n  postgres-url: postgres://x@y/z\n')).message).toMatch(/has no query/);
    expect(only(base('drill:\n  postgres-url: postgres://x@y/z\n  query: select 1\n  database: x\n')).path).toBe('drill.database');
  });
});

describe('policy runs', () => {
  const policy = (schedule: Record<string, unknown>, limits?: Record<string, unknown>, verify?: Record<string, unknown>): Policy =>
    validatePolicy({ name: 'p', sources: [{ agent: 'a', specs: ['cmd:true'] }], schedule, limits, verify });

  it('full Sundays, incremental Monday-Saturday', () => {
    const p = policy({ timezone: 'Europe/Berlin', full: '0 1 * * 0', incremental: '0 1 * * 1-6' });
    const runs = nextPolicyRuns(p, new Date('2026-11-19T12:00:00Z'), 5).map((r) => `${r.at.toISOString()} ${r.kind}`);
    expect(runs).toEqual([
      '2026-11-20T00:00:00.000Z incremental',
      '2026-11-21T00:00:00.000Z incremental',
      '2026-11-22T00:00:00.000Z full',
      '2026-11-23T00:00:00.000Z incremental',
      '2026-11-24T00:00:00.000Z incremental',
    ]);
  });

  it('full wins when both fire at the same minute', () => {
    const p = policy({ timezone: 'UTC', full: 'weekly', incremental: 'daily' });
    const runs = nextPolicyRuns(p, new Date('2026-11-20T12:00:00Z'), 4).map((r) => `${r.at.toISOString()} ${r.kind}`);
    expect(runs).toEqual([
      '2026-11-21T00:00:00.000Z incremental',
      '2026-11-22T00:00:00.000Z full',
      '2026-11-23T00:00:00.000Z incremental',
      '2026-11-24T00:00:00.000Z incremental',
    ]);
  });

  it('only times inside the run window count', () => {
    const p = policy({ timezone: 'America/New_York', full: '0 23 * * 0', incremental: '0 * * * *' }, { 'run-window': '22:00-02:00' });
    const runs = nextPolicyRuns(p, new Date('2026-11-22T12:00:00Z'), 6).map((r) => `${r.at.toISOString()} ${r.kind}`);
    // 22:00, 23:00 (full, Sunday), 00:00, 01:00 EST, then 22:00 Monday.
    expect(runs).toEqual([
      '2026-11-23T03:00:00.000Z incremental',
      '2026-11-23T04:00:00.000Z full',
      '2026-11-23T05:00:00.000Z incremental',
      '2026-11-23T06:00:00.000Z incremental',
      '2026-11-24T03:00:00.000Z incremental',
      '2026-11-24T04:00:00.000Z incremental',
    ]);
  });

  it('property: runs are increasing, unique, kinds correct, full never shadowed', () => {
    fc.assert(
      fc.property(policyDoc, fc.date({ min: new Date('2020-01-01'), max: new Date('2040-01-01'), noInvalidDate: true }), (doc, from) => {
        const p = validatePolicy(doc);
        const runs = nextPolicyRuns(p, from, 10);
        expect(runs.length).toBe(10);
        for (let i = 1; i < runs.length; i++) expect(runs[i].at.getTime()).toBeGreaterThan(runs[i - 1].at.getTime());
        const fulls = nextPolicyRuns({ ...p, schedule: { timeZone: p.schedule.timeZone, full: p.schedule.full } }, from, 10);
        const last = runs[runs.length - 1].at.getTime();
        expect(runs.filter((r) => r.kind === 'full').map((r) => r.at.getTime())).toEqual(fulls.map((r) => r.at.getTime()).filter((t) => t <= last));
      }),
      { numRuns: 100 },
    );
  });

  it('verification defaults: structure daily, read-data weekly (read-data wins a tie)', () => {
    const p = policy({ timezone: 'UTC', full: 'daily' });
    expect(p.verify.subset).toBe(10);
    const runs = nextVerifyRuns(p, new Date('2026-11-20T12:00:00Z'), 3).map((r) => `${r.at.toISOString()} ${r.kind}`);
    expect(runs).toEqual(['2026-11-21T00:00:00.000Z verify-structure', '2026-11-22T00:00:00.000Z verify-data', '2026-11-23T00:00:00.000Z verify-structure']);
    const off = policy({ timezone: 'UTC', full: 'daily' }, undefined, { structure: 'off', 'read-data': false });
    expect(nextVerifyRuns(off, new Date(), 3)).toEqual([]);
  });
});
