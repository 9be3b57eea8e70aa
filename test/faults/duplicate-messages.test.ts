// Issue 4, fault 2: duplicate and concurrent export messages for one (workspace, file type) through
// the real host queue: N identical messages at once, timer ticks while a long export runs (held at
// a seam the test controls), continuations racing duplicates. Exactly one export's files, every
// change once, nothing poisoned, no error recorded.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAzurite, type Azurite } from '../../src/local/azurite.js';
import { ManualClock } from '../../src/lib/platform/clock.js';
import type { FileType } from '../../src/lib/contract/schemas.js';
import { customerContainer, type CustomerContainer } from '../support/container.js';
import { freshWorkspace } from '../support/env.js';
import { shardOf } from '../../src/lib/source/pending.js';
import {
  Gate,
  changedBlobs,
  inventory,
  peekTexts,
  sequenceProblems,
  sourceRecords,
  startFaultHost,
  summary,
  verifyLogFiles,
  waitFor,
  type BlobInfo,
  type FaultHost,
  type Rec,
} from '../support/faults.js';

const N = 8;
const clock = new ManualClock(Date.now());
let app: Azurite;
let h: FaultHost;
const counts = { messagesSent: 0, timerTicksDuringExport: 0, busyOutcomes: 0, exportsThatWroteFiles: 0, files: 0, rowsLost: 0, duplicateRows: 0, rewrittenFiles: 0, poisoned: 0, errorsRecorded: 0 };

beforeAll(async () => {
  app = await startAzurite();
  h = await startFaultHost({ name: 'duplicate-messages', connectionString: app.connectionString, clock, settings: { EXPORT_MAX_ROWS_PER_FILE: '25' } });
});

afterAll(async () => {
  h?.setFaults(undefined);
  await h?.stop();
  await app?.stop();
  summary('duplicate and concurrent messages', counts);
  expect(h.leaks()).toEqual([]);
});

const iso = (ms: number) => new Date(ms).toISOString();
const deliveries = (from: number, to: number, campaign = 1): Rec[] =>
  Array.from({ length: to - from }, (_, i) => ({ delivery_id: `d${from + i}`, delivery_type: 'email', campaign_id: campaign, created_at: iso(clock.now() + from + i) }));
const message = (ws: number, fileType: FileType) => Buffer.from(JSON.stringify({ workspaceId: ws, fileType })).toString('base64');

const outcomes = (ws: number, outcome?: string) => h.logs.filter((r) => r.message === 'export finished' && r.workspaceId === ws && (outcome === undefined || r.outcome === outcome));

async function sendDuplicates(ws: number, fileType: FileType, n = N): Promise<void> {
  await Promise.all(Array.from({ length: n }, () => h.queue.sendMessage(message(ws, fileType))));
  counts.messagesSent += n;
}

async function check(ws: number, c: CustomerContainer, fileType: FileType, firstSequence = 1) {
  const names = (await c.list()).filter((n) => n.endsWith('.parquet'));
  const records = await sourceRecords(h.services, ws, fileType);
  const verdict = await verifyLogFiles({ client: c.client, ws, fileType, names, records, startSeq: 0, headSeq: records.at(-1)?.seq ?? 0 });
  const problems = [...verdict.problems, ...sequenceProblems(fileType, ws, names, firstSequence)];
  counts.rowsLost += verdict.lost;
  counts.duplicateRows += verdict.duplicates;
  const cursor = await h.services.cursors.get(ws, fileType);
  if (cursor.lastError) counts.errorsRecorded++;
  expect(problems).toEqual([]);
  expect(cursor).toMatchObject({ run: undefined, leaseOwner: undefined, lastError: undefined });
  return names;
}

async function noRewrite(before: Map<string, BlobInfo>, c: CustomerContainer) {
  const changed = changedBlobs(before, await inventory(c.client));
  counts.rewrittenFiles += changed.length;
  expect(changed).toEqual([]);
}

describe('duplicate and concurrent messages for one pair', () => {
  it(`${N} identical messages and timer ticks while an export is held mid-run: one export, every row once`, async () => {
    const ws = freshWorkspace();
    const c = await customerContainer();
    await h.ingest(ws, 'deliveries', deliveries(0, 100));
    // The export that the integration starts right away is held after its first file's checkpoint.
    const gate = new Gate();
    h.setFaults({ afterCheckpoint: () => (gate.hits === 0 ? gate.wait() : undefined) });
    expect((await h.call('PUT', `/workspaces/${ws}/integration`, { sasUrl: c.sasUrl, files: ['deliveries'] })).status).toBe(201);
    await gate.reached;
    const held = await inventory(c.client);
    expect([...held.keys()]).toHaveLength(2); // the probe marker and file 1

    await sendDuplicates(ws, 'deliveries');
    const before = h.logs.length;
    await h.host.invoke('exportTimer');
    counts.timerTicksDuringExport++;
    // The tick's message for this workspace's shard is expanded by a worker.
    const shardLog = () => h.logs.slice(before).find((r) => r.message === 'export fan-out' && r.shard === shardOf(ws));
    await waitFor(() => shardLog() !== undefined, 'the shard of the workspace expanded');
    expect(Number(shardLog()?.enqueued)).toBeGreaterThanOrEqual(1); // the running pair is queued again
    await waitFor(() => outcomes(ws, 'busy').length >= N + 1, `${N} duplicates and the tick's message answered busy`);
    expect((await c.list()).filter((n) => n.endsWith('.parquet'))).toHaveLength(1); // nobody else wrote

    gate.open();
    await h.host.whenIdle({ timeoutMs: 30_000 });
    h.setFaults(undefined);
    const names = await check(ws, c, 'deliveries');
    expect(names).toHaveLength(4);
    await noRewrite(held, c);
    const wrote = outcomes(ws).filter((r) => Number(r.files) > 0);
    expect(wrote).toHaveLength(1);
    counts.busyOutcomes += outcomes(ws, 'busy').length;
    counts.exportsThatWroteFiles += wrote.length;
    counts.files += names.length;
  });

  it('duplicates and a timer tick while a changeset is held mid-staging (blocks staged, not committed)', async () => {
    const ws = freshWorkspace();
    const c = await customerContainer();
    await h.ingest(ws, 'deliveries', deliveries(0, 30));
    expect((await h.call('PUT', `/workspaces/${ws}/integration`, { sasUrl: c.sasUrl, files: ['deliveries'] })).status).toBe(201);
    await h.host.whenIdle({ timeoutMs: 30_000 });
    const initial = await inventory(c.client);
    await h.ingest(ws, 'deliveries', [...deliveries(30, 80), ...deliveries(0, 20, 2)]);
    const gate = new Gate();
    h.setFaults({ afterBlockStaged: () => (gate.hits === 0 ? gate.wait() : undefined) });
    await h.host.invoke('exportTimer');
    await gate.reached;
    await sendDuplicates(ws, 'deliveries');
    await h.host.invoke('exportTimer');
    counts.timerTicksDuringExport++;
    await waitFor(() => outcomes(ws, 'busy').length >= N, `${N} duplicates answered busy`);
    expect((await c.list()).filter((n) => n.endsWith('.parquet'))).toHaveLength(2); // the staged file is not visible
    gate.open();
    await h.host.whenIdle({ timeoutMs: 30_000 });
    h.setFaults(undefined);
    const names = await check(ws, c, 'deliveries');
    expect(names.length).toBe(2 + 3); // 30 rows → 2 files; 70 changed keys → 3 files
    await noRewrite(initial, c);
    counts.busyOutcomes += outcomes(ws, 'busy').length;
    counts.exportsThatWroteFiles += outcomes(ws).filter((r) => Number(r.files) > 0).length;
    counts.files += names.length;
  });

  it('duplicates racing for the lease with no export running, then racing continuations', async () => {
    const ws = freshWorkspace();
    const c = await customerContainer();
    expect((await h.call('PUT', `/workspaces/${ws}/integration`, { sasUrl: c.sasUrl, files: ['metrics', 'deliveries'] })).status).toBe(201);
    await h.host.whenIdle({ timeoutMs: 30_000 });
    // Races: 8 messages and a timer tick at once, nothing held.
    await h.ingest(ws, 'deliveries', deliveries(0, 60));
    await Promise.all([sendDuplicates(ws, 'deliveries'), h.host.invoke('exportTimer')]);
    await h.host.whenIdle({ timeoutMs: 30_000 });
    const first = await check(ws, c, 'deliveries');
    expect(first).toHaveLength(3);

    // Continuations: every file spends the time budget (the clock jumps at each checkpoint), so each
    // invocation hands the rest to a new message, while duplicates keep arriving.
    const before = await inventory(c.client);
    await h.ingest(ws, 'deliveries', [...deliveries(60, 160), ...deliveries(0, 30, 3)]);
    let checkpoints = 0;
    h.setFaults({
      afterCheckpoint: async () => {
        clock.advance(400_000); // > EXPORT_TIME_BUDGET_SECONDS (300 s), < the lease (540 s)
        if (++checkpoints === 2) await sendDuplicates(ws, 'deliveries');
      },
    });
    await Promise.all([sendDuplicates(ws, 'deliveries'), h.host.invoke('exportTimer')]);
    await h.host.whenIdle({ timeoutMs: 30_000 });
    h.setFaults(undefined);
    const names = await check(ws, c, 'deliveries');
    expect(names).toHaveLength(3 + 6); // 100 new + 30 updated keys = 130 → 6 files of ≤ 25
    await noRewrite(before, c);
    const continued = h.logs.filter((r) => r.message === 'export finished' && r.workspaceId === ws && r.outcome === 'continued').length;
    expect(continued).toBeGreaterThanOrEqual(2);
    counts.busyOutcomes += outcomes(ws, 'busy').length;
    counts.exportsThatWroteFiles += outcomes(ws).filter((r) => Number(r.files) > 0).length;
    counts.files += names.length;
  });

  // Found by this suite: DELETE of the integration reset the cursor and cleared the lease of an export
  // in flight (Cursors.resetAll) keeping nextSequence, so an integration created again at once on the
  // same container wrote the same file name as the old in-flight export; when the old one committed
  // first, the new run failed with file_name_taken on every tick until the owner deleted a file.
  // Now (issue 10) the old export's name was reserved before it staged, the new integration's cursor
  // is a new instance's, and the old export checks the settings before its commit and writes nothing.
  it('an integration deleted and created again while an export is in flight syncs without manual clean-up', async () => {
    const ws = freshWorkspace();
    const c = await customerContainer();
    await h.ingest(ws, 'deliveries', deliveries(0, 30));
    const old = new Gate();
    const fresh = new Gate();
    let staged = 0;
    h.setFaults({ afterBlockStaged: () => (++staged === 1 ? old.wait() : staged === 2 ? fresh.wait() : undefined) });
    expect((await h.call('PUT', `/workspaces/${ws}/integration`, { sasUrl: c.sasUrl, files: ['deliveries'] })).status).toBe(201);
    await old.reached; // the first export has staged file 1, not committed
    expect((await h.call('DELETE', `/workspaces/${ws}/integration`)).status).toBe(200);
    expect((await h.call('PUT', `/workspaces/${ws}/integration`, { sasUrl: c.sasUrl, files: ['deliveries'] })).status).toBe(201);
    await fresh.reached; // the new integration's initial sync has staged its file too
    old.open(); // the old export reaches its commit first
    await waitFor(() => h.logs.some((r) => r.message === 'export finished' && r.workspaceId === ws && ['busy', 'skipped'].includes(String(r.outcome))), 'the old export to stop');
    fresh.open();
    await h.host.whenIdle({ timeoutMs: 30_000 });
    h.setFaults(undefined);
    await h.sync(); // and one more tick
    const status = await h.call('GET', `/workspaces/${ws}/integration`);
    expect(status.body.files.deliveries).toMatchObject({ lastError: null, pendingChanges: 0 });
    // Sequence 1 went to the deleted integration's export, which wrote nothing; the new initial sync follows it, whole.
    const names = (await c.list()).filter((n) => n.endsWith('.parquet'));
    const records = await sourceRecords(h.services, ws, 'deliveries');
    const verdict = await verifyLogFiles({ client: c.client, ws, fileType: 'deliveries', names, records, startSeq: 0, headSeq: records.at(-1)!.seq });
    expect([...verdict.problems, ...sequenceProblems('deliveries', ws, names, 2)]).toEqual([]);
  });

  it('nothing was poisoned and no worker failed', async () => {
    const poisoned = await peekTexts(h.poison);
    counts.poisoned = poisoned.length;
    expect(poisoned).toEqual([]);
    expect(h.logs.filter((r) => r.level === 'error' && !/file_name_taken|already exists/.test(JSON.stringify(r)))).toEqual([]);
  });
});
