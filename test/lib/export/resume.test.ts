// Crash, retry, continuation and credential paths of one export, through real Azurite.
import { beforeAll, describe, expect, it } from 'vitest';
import { createServices, type Services } from '../../../src/lib/services.js';
import { Exporter, type ExportFaults } from '../../../src/lib/export/job.js';
import { ManualClock } from '../../../src/lib/platform/clock.js';
import { customerContainer, duck, sqlList } from '../../support/container.js';
import { freshWorkspace, testConfig, testStorage } from '../../support/env.js';

const pad = (n: number) => String(n).padStart(20, '0');
const T0 = Date.parse('2026-03-01T00:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

let services: Services;
beforeAll(async () => {
  const config = testConfig({ EXPORT_MAX_ROWS_PER_FILE: '100' });
  await testStorage(config);
  services = createServices(config);
});

const exporterWith = (faults?: ExportFaults, overrides: Partial<Services['config']> = {}, clock = services.clock) =>
  new Exporter({ ...services, config: { ...services.config, ...overrides }, clock, faults });

class Crash extends Error {}

async function setup(n: number, fileType: 'deliveries' | 'metrics' = 'deliveries') {
  const ws = freshWorkspace();
  const c = await customerContainer();
  await services.integrations.put(ws, { sasUrl: c.sasUrl, files: [fileType] });
  const records =
    fileType === 'deliveries'
      ? Array.from({ length: n }, (_, i) => ({ delivery_id: `d${i}`, delivery_type: 'email', created_at: iso(T0 + i) }))
      : Array.from({ length: n }, (_, i) => ({ event_id: `m${i}`, delivery_id: `d${i}`, metric: 'sent', created_at: iso(T0 + i) }));
  await services.ingest.ingest(ws, fileType, records);
  return { ws, c };
}

async function allRows(c: Awaited<ReturnType<typeof customerContainer>>) {
  const names = (await c.list()).filter((n) => n.endsWith('.parquet'));
  const files = await c.download(names);
  const [r] = await duck(`SELECT count(*) AS n, count(DISTINCT seq_num) AS k FROM read_parquet(${sqlList(files)})`);
  return { names, n: Number(r.n), distinct: Number(r.k) };
}

describe('export crash safety and continuation', () => {
  for (const step of ['afterSourceRead', 'afterBlockStaged', 'afterBlobCommit', 'afterCheckpoint'] as const) {
    it(`a crash ${step} is retried into exactly one copy of every row`, async () => {
      const { ws, c } = await setup(250);
      let crashes = 0;
      const faults: ExportFaults = { [step]: () => { if (crashes++ === 1) throw new Crash(step); } };
      const job = { workspaceId: ws, fileType: 'deliveries' as const };
      await expect(exporterWith(faults).run(job, 'a')).rejects.toThrow(Crash);
      // The lease was released on failure, so the retry (a new invocation) proceeds at once.
      const retry = await exporterWith().run(job, 'b');
      expect(retry.status).toBe('done');
      const { names, n, distinct } = await allRows(c);
      expect(names).toEqual([1, 2, 3].map((s) => `deliveries_v4_${ws}_${pad(s)}.parquet`));
      expect([n, distinct]).toEqual([250, 250]);
      expect((await services.cursors.get(ws, 'deliveries')).nextSequence).toBe(4);
    });
  }

  it('a time-bounded export hands the rest to continuation messages and produces the same files', async () => {
    const { ws, c } = await setup(350);
    const clock = new ManualClock(T0);
    const faults: ExportFaults = { afterCheckpoint: () => clock.advance(1000) };
    const job = { workspaceId: ws, fileType: 'deliveries' as const };
    const exporter = exporterWith(faults, { timeBudgetMs: 1500 }, clock);
    const statuses = [];
    for (let i = 0; i < 10; i++) {
      const out = await exporter.run(job, `inv${i}`);
      statuses.push(out.status);
      if (out.status === 'done') break;
    }
    // Files 1–2 in the first invocation; the second ends with file 4, which reaches the target (the run completes with its checkpoint).
    expect(statuses).toEqual(['continued', 'done']);
    const { names, n, distinct } = await allRows(c);
    expect(names).toEqual([1, 2, 3, 4].map((s) => `deliveries_v4_${ws}_${pad(s)}.parquet`));
    expect([n, distinct]).toEqual([350, 350]);
  });

  it('the initial metrics sync is split into parts named with two sequences', async () => {
    const { ws, c } = await setup(230, 'metrics');
    const out = await exporterWith().run({ workspaceId: ws, fileType: 'metrics' }, 'a');
    expect(out.files.map((f) => [f.name, f.rows])).toEqual([
      [`metrics_v4_${ws}_${pad(1)}_${pad(1)}.parquet`, 100],
      [`metrics_v4_${ws}_${pad(1)}_${pad(2)}.parquet`, 100],
      [`metrics_v4_${ws}_${pad(1)}_${pad(3)}.parquet`, 30],
    ]);
    await services.ingest.ingest(ws, 'metrics', [{ event_id: 'm0', delivery_id: 'd0', metric: 'opened', created_at: iso(T0) }]);
    const next = await exporterWith().run({ workspaceId: ws, fileType: 'metrics' }, 'a');
    expect(next.files.map((f) => f.name)).toEqual([`metrics_v4_${ws}_${pad(2)}.parquet`]);
    expect((await allRows(c)).n).toBe(231);
  });

  it('a second worker on the same pair while the lease is held does nothing', async () => {
    const { ws } = await setup(10);
    const job = { workspaceId: ws, fileType: 'deliveries' as const };
    let second: Awaited<ReturnType<Exporter['run']>> | undefined;
    const faults: ExportFaults = { afterSourceRead: async () => { second ??= await exporterWith().run(job, 'other'); } };
    const first = await exporterWith(faults).run(job, 'owner');
    expect(first.status).toBe('done');
    expect(second?.status).toBe('busy');
  });

  it('a revoked access policy records a credentials error, keeps the cursor, and a rotated SAS delivers everything', async () => {
    const { ws, c } = await setup(20);
    await services.integrations.put(ws, { sasUrl: await c.policySas('warehouse'), files: ['deliveries'] });
    await c.revokePolicies();
    const job = { workspaceId: ws, fileType: 'deliveries' as const };
    const failed = await exporterWith().run(job, 'a');
    expect(failed.status).toBe('failed');
    const cursor = await services.cursors.get(ws, 'deliveries');
    expect(cursor.lastErrorCode).toBe('sas_policy_invalid');
    expect(cursor.lastError).not.toMatch(/sig=/);
    expect(cursor.leaseUntil).toBe(0);
    expect(cursor.run?.slot?.sequence).toBe(1); // the name reserved by the run: its retry writes it
    expect((await c.list()).filter((n) => n.endsWith('.parquet'))).toEqual([]);
    await services.integrations.put(ws, { sasUrl: c.sasUrl, files: ['deliveries'] });
    const ok = await exporterWith().run(job, 'a');
    expect(ok.files.map((f) => [f.name, f.rows])).toEqual([[`deliveries_v4_${ws}_${pad(1)}.parquet`, 20]]);
    expect((await services.cursors.get(ws, 'deliveries')).lastError).toBeUndefined();
  });
});
