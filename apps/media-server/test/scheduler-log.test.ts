/**
 * The schedulers log through child loggers of the server's pino logger, each naming its
 * component, so a log reader can tell the policy scheduler's lines from the maintenance
 * scheduler's and the request log's.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Catalog } from '@hoard/catalog';
import { MaintenanceScheduler } from '../dist/maintenance-scheduler.js';
import { PolicyScheduler } from '../dist/policy-scheduler.js';
import type { Maintenance } from '../dist/maintenance.js';
import type { RunBoard } from '../dist/run-board.js';

function capturedLogger(): { lines: Record<string, unknown>[]; logger: pino.Logger } {
  const lines: Record<string, unknown>[] = [];
  return {
    lines,
    logger: pino({ base: { service: 'hoard-server' } }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) }),
  };
}

describe('scheduler logs', () => {
  it('the policy scheduler logs with component scheduler', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hoard-sched-log-'));
    const catalog = await Catalog.open(join(dir, 'catalog'));
    try {
      await catalog.putPolicy('broken', { name: 'broken' });
      const { lines, logger } = capturedLogger();
      // The runs are not reached: the only policy does not validate.
      await new PolicyScheduler(catalog, {} as RunBoard, { log: logger }).tick();
      expect(lines).toContainEqual(
        expect.objectContaining({
          service: 'hoard-server',
          component: 'scheduler',
          policy: 'broken',
          msg: 'policy in the catalog does not validate; not scheduled',
        }),
      );
    } finally {
      await catalog.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('the maintenance scheduler logs with component maintenance-scheduler', async () => {
    const { lines, logger } = capturedLogger();
    const catalog = { listPolicies: async () => Promise.reject(new Error('catalog closed')) } as unknown as Catalog;
    const scheduler = new MaintenanceScheduler(catalog, {} as Maintenance, { clock: { now: () => Date.now() }, gcSchedule: null, log: logger });
    scheduler.start();
    try {
      const deadline = Date.now() + 10_000;
      while (lines.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    } finally {
      scheduler.stop();
    }
    expect(lines).toContainEqual(expect.objectContaining({ component: 'maintenance-scheduler', error: 'catalog closed', msg: 'maintenance check failed' }));
  });
});
