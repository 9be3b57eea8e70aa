// Issue 10, points 2 and 3 (SPEC 5.6, DELETE in section 6): a crash that left a committed but not
// checkpointed file, or a worker whose lease expired, followed by a change that starts a new
// generation or a new integration: whole-sync disable → enable, v1 → v4 upgrade, DELETE → PUT
// again (with and without the owner purging the container, as the product docs tell them to). No
// name is written (or tried) twice, the new generation's initial sync is whole, and the stale
// worker writes nothing. Then DELETE racing a running export: the integration created again starts
// with a whole initial sync whatever the old export was doing.
import { describe, expect, it } from 'vitest';
import { Admin } from '../../src/lib/api/admin.js';
import type { ExportFaults } from '../../src/lib/export/job.js';
import { ManualClock } from '../../src/lib/platform/clock.js';
import { customerContainer } from '../support/container.js';
import { freshWorkspace, testServices } from '../support/env.js';
import {
  Gate,
  changedBlobs,
  inventory,
  parquetNames,
  sequenceOf,
  sequenceReuse,
  settle,
  snapshotRows,
  sourceRecords,
  summary,
  verifyLogFiles,
  verifySnapshotFiles,
  within,
} from '../support/faults.js';
import { Crash, LEASE_MS, exporter, runToEnd, type Seam } from './crash-harness.js';

const services = await testServices();

const T0 = Date.parse('2026-03-01T00:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();
const subjects = (n: number) => Array.from({ length: n }, (_, i) => ({ subject_name: `s${i}`, campaign_type: 'triggered', campaign_id: i, started_campaign_at: iso(T0 + i), created_at: iso(T0 + i) }));
const statusOf = (r: Awaited<ReturnType<typeof settle>>) => ('outcome' in r ? (r.outcome as { status: string }).status : `error ${String(r.error)}`);

type Change = 'disable → enable' | 'upgrade v1 → v4' | 'DELETE → PUT';

async function applyChange(change: Change, ws: number, sasUrl: string): Promise<void> {
  if (change === 'disable → enable') {
    await services.integrations.disable(ws);
    await services.integrations.enable(ws);
  } else if (change === 'upgrade v1 → v4') {
    await services.integrations.upgrade(ws, { schemaVersion: 'v4' });
  } else {
    await new Admin(services).delete(ws);
    await services.integrations.put(ws, { sasUrl, files: ['subjects'] });
  }
}

interface Trial {
  change: Change;
  seam: Seam;
  at: number;
  /** 'throw': the worker failed (catch path ran); 'die': it froze with the lease and wakes after the new generation finished. */
  mode: 'throw' | 'die';
  purge: boolean;
}

interface Measured {
  label: string;
  problems: string[];
  reusedNames: number;
  staleCommits: number;
  staleWrites: number;
  rows: number;
}

/** Subjects, 50 rows in files of 20: the crash, the change, the new generation to its end, the stale worker woken. */
async function trial(t: Trial): Promise<Measured> {
  const label = `${t.change}${t.purge ? ' (container purged)' : ''} after ${t.seam}#${t.at} ${t.mode}`;
  const m: Measured = { label, problems: [], reusedNames: 0, staleCommits: 0, staleWrites: 0, rows: 0 };
  const problem = (p: string) => m.problems.push(`${label}: ${p}`);
  const ws = freshWorkspace();
  const c = await customerContainer();
  const job = { workspaceId: ws, fileType: 'subjects' as const };
  await services.ingest.ingest(ws, 'subjects', subjects(50));
  await services.integrations.put(ws, { sasUrl: c.sasUrl, files: ['subjects'], ...(t.change === 'upgrade v1 → v4' ? { schemaVersion: 'v1' } : {}) });
  const clock = new ManualClock(Date.now());

  let calls = 0;
  let commits = 0;
  const frozen = new Gate();
  const fault = async () => {
    if (++calls !== t.at) return;
    if (t.mode === 'throw') throw new Crash(t.seam);
    await frozen.wait();
  };
  const faults: ExportFaults = { [t.seam]: fault };
  const seamAtCommit = faults.afterBlobCommit;
  faults.afterBlobCommit = async () => {
    commits++;
    await seamAtCommit?.();
  };
  const runA = settle(exporter(services, clock, 20, faults).run(job, 'owner-a'));
  if (t.mode === 'throw') {
    const r = await within(runA, 30_000, `${label}: crashing run`);
    if (!('error' in r) || !(r.error instanceof Crash)) problem(`expected the injected crash, got ${statusOf(r)}`);
  } else {
    await within(frozen.reached, 30_000, `${label}: reaching the seam`);
  }

  const before = await inventory(c.client);
  await applyChange(t.change, ws, c.sasUrl);
  if (t.purge) for (const n of parquetNames(before)) await c.client.deleteBlob(n);
  if (t.mode === 'die') clock.advance(LEASE_MS + 1000);

  const out = await runToEnd(exporter(services, clock, 20), ws, 'subjects', 'owner-b');
  if (out.status !== 'done') problem(`the new generation: ${out.status} ${out.reason ?? ''}`);
  const settled = await inventory(c.client);
  if (t.mode === 'die') {
    const committed = commits;
    frozen.open();
    const r = await within(runA, 30_000, `${label}: stale worker`);
    m.staleCommits = commits - committed;
    if (!['busy', 'skipped'].includes(statusOf(r))) problem(`woken stale worker: ${statusOf(r)}, expected busy or skipped`);
    if (m.staleCommits) problem(`woken stale worker tried ${m.staleCommits} commit(s)`);
  }
  const after = await inventory(c.client);
  const staleWrites = [...parquetNames(after).filter((n) => !settled.has(n)), ...changedBlobs(settled, after)];
  m.staleWrites = staleWrites.length;
  if (staleWrites.length) problem(`written after the new generation finished: ${staleWrites.join(', ')}`);

  // A name written before is never written again: not over a kept file, not after a purge.
  const reused = t.purge ? parquetNames(after).filter((n) => before.has(n)) : changedBlobs(before, after).filter((n) => n.endsWith('.parquet'));
  const seqReuse = sequenceReuse([...parquetNames(before), ...parquetNames(after)]);
  m.reusedNames = reused.length + seqReuse.length;
  if (reused.length) problem(`names written again: ${reused.join(', ')}`);
  m.problems.push(...seqReuse.map((p) => `${label}: ${p}`));
  const cursor = await services.cursors.get(ws, 'subjects');
  if (cursor.lastError) problem(`cursor error ${cursor.lastErrorCode}: ${cursor.lastError}`);

  // The new generation: a whole initial sync, every sequence after every earlier one.
  const fresh = parquetNames(after).filter((n) => !before.has(n));
  const lastBefore = Math.max(0, ...parquetNames(before).map(sequenceOf));
  for (const n of fresh) if (sequenceOf(n) <= lastBefore) problem(`${n} does not follow the earlier files (last ${lastBefore})`);
  const records = await sourceRecords(services, ws, 'subjects');
  const v = await verifyLogFiles({ client: c.client, ws, fileType: 'subjects', names: fresh, records, startSeq: 0, headSeq: records.at(-1)!.seq });
  m.rows = v.rows;
  m.problems.push(...v.problems.map((p) => `${label}: ${p}`));
  return m;
}

const CHANGES: Change[] = ['disable → enable', 'upgrade v1 → v4', 'DELETE → PUT'];

function report(name: string, results: Measured[]) {
  const sum = (k: keyof Measured) => results.reduce((n, r) => n + (r[k] as number), 0);
  summary(name, { trials: results.length, rowsChecked: sum('rows'), reusedNames: sum('reusedNames'), staleCommits: sum('staleCommits'), staleWrites: sum('staleWrites'), problems: results.reduce((n, r) => n + r.problems.length, 0) });
}

describe('a new generation after a crash never writes a name written before (SPEC 5.6)', () => {
  it('commit without checkpoint, then disable → enable, upgrade or DELETE → PUT, with and without a purge', async () => {
    const trials: Trial[] = [];
    for (const change of CHANGES) for (const mode of ['throw', 'die'] as const) for (const purge of [false, true]) trials.push({ change, seam: 'afterBlobCommit', at: 2, mode, purge });
    const results: Measured[] = [];
    for (const t of trials) results.push(await trial(t));
    report('commit without checkpoint, then a new generation', results);
    expect(results.flatMap((r) => r.problems)).toEqual([]);
  });

  it('a worker whose lease expired wakes after the generation changed: it writes and tries nothing', async () => {
    const trials: Trial[] = [];
    const points: [Seam, number][] = [['afterSourceRead', 1], ['afterBlockStaged', 1], ['afterBlockStaged', 2], ['afterCheckpoint', 1]];
    for (const change of CHANGES) for (const [seam, at] of points) trials.push({ change, seam, at, mode: 'die', purge: false });
    const results: Measured[] = [];
    for (const t of trials) results.push(await trial(t));
    report('stale worker wakes after a new generation', results);
    expect(results.flatMap((r) => r.problems)).toEqual([]);
  });
});

describe('DELETE racing a running export (issue 10 point 3)', () => {
  const id = (i: number) => `p${String(i).padStart(2, '0')}`;
  const people = Array.from({ length: 25 }, (_, i) => ({ internal_customer_id: id(i), customer_id: `c${i}`, email_addr: `${id(i)}@example.com`, created_at: iso(T0), updated_at: iso(T0 + i) }));

  // 'reset race': the old export saves its cursor between DELETE's read and write of it.
  // 'old export goes on': the old export resumes after the integration was created again.
  for (const race of ['reset race', 'old export goes on'] as const) {
    for (const sameContainer of [false, true]) {
      it(`${race}, ${sameContainer ? 'same' : 'another'} container: the new integration's People sync is whole, the old export writes nothing after DELETE`, async () => {
        const ws = freshWorkspace();
        const old = await customerContainer();
        await services.ingest.ingest(ws, 'people', people);
        await services.integrations.put(ws, { sasUrl: old.sasUrl, files: ['people'] });
        const clock = new ManualClock(Date.now());
        const held = new Gate();
        let checkpoints = 0;
        const job = { workspaceId: ws, fileType: 'people' as const };
        const runA = settle(exporter(services, clock, 9, { afterCheckpoint: () => (++checkpoints === 1 ? held.wait() : undefined) }).run(job, 'old'));
        await within(held.reached, 30_000, 'the old export after its first file');
        const oldRun = (await services.cursors.get(ws, 'people')).run!.id;

        const list = services.cursors.list.bind(services.cursors);
        if (race === 'reset race') {
          services.cursors.list = async (w: number) => {
            const listed = await list(w);
            held.open();
            await runA;
            return listed;
          };
        }
        const atDelete = await inventory(old.client);
        try {
          expect((await new Admin(services).delete(ws)).status).toBe(200);
        } finally {
          services.cursors.list = list;
        }
        const c = sameContainer ? old : await customerContainer();
        if (race === 'reset race') {
          held.open();
          await runA;
        }
        await services.integrations.put(ws, { sasUrl: c.sasUrl, files: ['people'] });
        held.open();
        const a = await within(runA, 30_000, 'the old export');
        expect(['busy', 'skipped']).toContain(statusOf(a));

        const out = await runToEnd(exporter(services, clock, 9), ws, 'people', 'new');
        expect(out.status).toBe('done');
        const end = await inventory(old.client);
        const lateOld = parquetNames(end).filter((n) => !atDelete.has(n) && end.get(n)!.metadata.run === oldRun);
        const now = sameContainer ? end : await inventory(c.client);
        const fresh = parquetNames(now).filter((n) => !atDelete.has(n) && now.get(n)!.metadata.run !== oldRun);
        const records = await sourceRecords(services, ws, 'people');
        const expected = snapshotRows('people', ws, records, [], records.at(-1)!.seq, 0);
        const v = await verifySnapshotFiles({ client: c.client, fileType: 'people', names: fresh, expected });
        summary(`DELETE racing an export (${race}, ${sameContainer ? 'same' : 'another'} container)`, { people: expected.length, exportedToNew: v.rows, lost: v.lost, oldExportFilesAfterDelete: lateOld.length, sequenceReuse: sequenceReuse([...parquetNames(end), ...parquetNames(now)]).length });
        expect(lateOld).toEqual([]);
        expect(v.problems).toEqual([]);
        expect(sequenceReuse([...parquetNames(end), ...parquetNames(now)])).toEqual([]);
      });
    }
  }
});
