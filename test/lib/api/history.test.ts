// The export history route (SPEC section 6) through HTTP, the local host and Azurite: entries are
// written by the worker at each checkpoint, newest first, filtered, paged, pruned after 90 days.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Host } from '../../../src/local/host.js';
import { startAppHost } from '../../support/app-host.js';
import { ManualClock } from '../../../src/lib/platform/clock.js';
import { createServices, useClock } from '../../../src/lib/services.js';
import { loadConfig } from '../../../src/lib/platform/config.js';
import { CursorMoved } from '../../../src/lib/export/cursors.js';
import { HISTORY_RETENTION_MS } from '../../../src/lib/export/history.js';
import { customerContainer } from '../../support/container.js';
import { freshWorkspace } from '../../support/env.js';

const MINUTE = 60_000;
const clock = new ManualClock(Date.now());
let host: Host;

async function call(method: string, path: string, body?: unknown) {
  const r = await fetch(`${host.url}/api${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, body: (text ? JSON.parse(text) : undefined) as any };
}
const exports = (ws: number, query = '') => call('GET', `/workspaces/${ws}/integration/exports${query}`);
async function sync() {
  await host.invoke('exportTimer');
  await host.whenIdle({ timeoutMs: 60_000 });
}
async function ingest(ws: number, ids: string[]) {
  const records = ids.map((id) => ({ delivery_id: id, delivery_type: 'email', created_at: new Date(clock.now()).toISOString() }));
  expect((await call('POST', `/workspaces/${ws}/ingest/deliveries`, records)).status).toBe(202);
}

/** A workspace exporting deliveries and subjects, synced three times a minute apart (one initial, two changesets). */
async function syncedThreeTimes() {
  const ws = freshWorkspace();
  const c = await customerContainer();
  await ingest(ws, ['a', 'b']);
  expect((await call('PUT', `/workspaces/${ws}/integration`, { sasUrl: c.sasUrl, files: ['deliveries', 'subjects'] })).status).toBe(201);
  const t = new Date(clock.now()).toISOString();
  const subject = { subject_name: 's1', campaign_type: 'triggered', campaign_id: 1, started_campaign_at: t, created_at: t };
  expect((await call('POST', `/workspaces/${ws}/ingest/subjects`, [subject])).status).toBe(202);
  await sync();
  for (const ids of [['c'], ['d', 'e', 'f']]) {
    clock.advance(MINUTE);
    await ingest(ws, ids);
    await sync();
  }
  return { ws, c };
}

let three: Awaited<ReturnType<typeof syncedThreeTimes>>;

beforeAll(async () => {
  useClock(clock);
  host = await startAppHost({ queue: `history-${process.pid}` });
  three = await syncedThreeTimes();
});

afterAll(async () => {
  await host?.stop();
});

describe('GET .../integration/exports', () => {
  it('lists every file written, newest first, with what the worker checkpointed', async () => {
    const { ws, c } = three;
    const r = await exports(ws);
    expect(r.status).toBe(200);
    const files = (await c.list()).filter((n) => n.endsWith('.parquet'));
    const entries = r.body.entries;
    expect(entries.map((e: any) => e.name).sort()).toEqual(files.sort());
    const deliveries = entries.filter((e: any) => e.fileType === 'deliveries');
    expect(deliveries.map((e: any) => [e.sequence, e.kind, e.rows])).toEqual([
      [3, 'changeset', 3],
      [2, 'changeset', 1],
      [1, 'initial', 2],
    ]);
    const times = entries.map((e: any) => Date.parse(e.at));
    expect([...times].sort((a, b) => b - a)).toEqual(times);
    for (const e of deliveries) {
      expect(e).toMatchObject({ outcome: 'written', bytes: expect.any(Number), startedAt: expect.any(String), committedAt: e.at, lagSeconds: expect.any(Number) });
      expect(Date.parse(e.startedAt)).toBeLessThanOrEqual(Date.parse(e.committedAt));
    }
    expect(r.body.next).toBeNull();
  });

  it('filters by file type and pages with limit and before', async () => {
    const { ws } = three;
    const subjects = (await exports(ws, '?fileType=subjects')).body.entries;
    expect(subjects.map((e: any) => e.fileType)).toEqual(['subjects']);
    const page1 = await exports(ws, '?fileType=deliveries&limit=2');
    expect(page1.body.entries.map((e: any) => e.sequence)).toEqual([3, 2]);
    expect(page1.body.next).toEqual(page1.body.entries[1].id);
    const page2 = await exports(ws, `?fileType=deliveries&limit=2&before=${encodeURIComponent(page1.body.next)}`);
    expect(page2.body).toMatchObject({ entries: [{ sequence: 1, kind: 'initial' }], next: null });
    // An ISO time: the entries committed before it.
    const newest = page1.body.entries[0];
    const older = await exports(ws, `?fileType=deliveries&before=${encodeURIComponent(newest.at)}`);
    expect(older.body.entries.map((e: any) => e.sequence)).toEqual([2, 1]);
  });

  it('answers 400 with a field list for bad query parameters, 404 without an integration', async () => {
    const { ws } = three;
    for (const q of ['?limit=0', '?limit=abc', '?limit=1001', '?fileType=nope', '?before=yesterday', '?before=1|x']) {
      const r = await exports(ws, q);
      expect(r.status, q).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'invalid_query', message: expect.any(String), details: [expect.objectContaining({ path: expect.any(String), message: expect.any(String) })] });
    }
    const none = await exports(freshWorkspace());
    expect(none.status).toBe(404);
    expect(none.body.error).toMatchObject({ code: 'integration_not_found', details: [] });
    expect((await exports(ws, '?code=some-function-key')).status).toBe(200);
  });

  it('records a failed attempt with its error code', async () => {
    const ws = freshWorkspace();
    const c = await customerContainer();
    await ingest(ws, ['x']);
    const policySas = await c.policySas('p1');
    expect((await call('PUT', `/workspaces/${ws}/integration`, { sasUrl: policySas, files: ['deliveries'] })).status).toBe(201);
    await c.revokePolicies();
    await sync();
    const [entry] = (await exports(ws)).body.entries;
    expect(entry).toMatchObject({ outcome: 'failed', fileType: 'deliveries', error: { code: expect.stringMatching(/^sas_|^export_failed$/), message: expect.any(String) } });
    expect(JSON.stringify(entry)).not.toMatch(/sig=/i);
  });
});

describe('history storage', () => {
  it('a checkpoint that loses its ETag race writes no history entry', async () => {
    const services = createServices(loadConfig(), clock);
    const ws = freshWorkspace();
    const cursor = await services.cursors.save({ ...(await services.cursors.get(ws, 'deliveries')) });
    await services.cursors.save(cursor); // someone else moves it
    const entry = { outcome: 'written', fileType: 'deliveries', name: 'x.parquet', sequence: 1, kind: 'initial', rows: 1, bytes: 1, startedAt: clock.now(), committedAt: clock.now(), lagSeconds: 0 } as const;
    await expect(services.cursors.save(cursor, entry)).rejects.toBeInstanceOf(CursorMoved);
    expect((await services.cursors.history.list(ws, { limit: 10 })).entries).toEqual([]);
    expect((await services.cursors.list(ws)).map((c) => c.fileType)).toEqual(['deliveries']);
  });

  it('prunes entries older than 90 days a bounded batch at a time, keeping newer ones', async () => {
    const services = createServices(loadConfig(), clock);
    const ws = freshWorkspace();
    let cursor = await services.cursors.save(await services.cursors.get(ws, 'metrics'));
    const now = clock.now();
    const times = [now - HISTORY_RETENTION_MS - 2 * MINUTE, now - HISTORY_RETENTION_MS - MINUTE, now - HISTORY_RETENTION_MS + MINUTE, now];
    for (const [i, t] of times.entries()) {
      cursor = await services.cursors.save(cursor, { outcome: 'failed', fileType: 'metrics', failedAt: t, code: `c${i}`, message: 'm' });
    }
    expect(await services.cursors.history.prune(ws, now)).toBe(2);
    expect((await services.cursors.history.list(ws, { limit: 10 })).entries.map((e) => (e.outcome === 'failed' ? e.code : ''))).toEqual(['c3', 'c2']);
    // History entries never show up as cursors.
    expect((await services.cursors.list(ws)).map((c) => c.fileType)).toEqual(['metrics']);
  });
});
