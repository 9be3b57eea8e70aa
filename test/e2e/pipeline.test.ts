// End to end through the real parts: HTTP ingest → source log → timer → queue → worker → parquet in a
// customer container on Azurite → DuckDB. Asserts exact names, schemas and the merged warehouse state.
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import type { Host } from '../../src/local/host.js';
import { startAppHost } from '../support/app-host.js';
import { SCHEMAS, FILE_TYPES, type FileType } from '../../src/lib/contract/schemas.js';
import { customerContainer, duck, sqlList, type CustomerContainer } from '../support/container.js';
import { freshWorkspace } from '../support/env.js';

const DAY = 24 * 3600 * 1000;
const NOW = Date.now();
const iso = (ms: number) => new Date(ms).toISOString();
const pad = (n: number) => String(n).padStart(20, '0');
const DUCK_TYPES = { INTEGER: 'BIGINT', STRING: 'VARCHAR', BOOLEAN: 'BOOLEAN', TIMESTAMP: 'TIMESTAMP WITH TIME ZONE' };

let host: Host;
let container: CustomerContainer;
const ws = freshWorkspace();

async function post(path: string, body: unknown, method = 'POST') {
  const r = await fetch(`${host.url}/api${path}`, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}
const ingest = async (name: string, records: unknown[]) => {
  const r = await post(`/workspaces/${ws}/ingest/${name}`, records);
  expect(r, JSON.stringify(r.body)).toMatchObject({ status: 202, body: { accepted: records.length } });
};
async function sync() {
  await host.invoke('exportTimer');
  await host.whenIdle({ timeoutMs: 60_000 });
}

// --- the source data, kept here so the expected warehouse state can be computed from it ---
type Rec = Record<string, unknown>;
const source: Record<string, Rec[]> = {};
const record = (name: string, recs: Rec[]) => {
  (source[name] ??= []).push(...recs);
  return recs;
};

const people1 = [
  { internal_customer_id: 'p1', customer_id: 'c1', email_addr: 'one@example.com', created_at: iso(NOW - 90 * DAY), updated_at: iso(NOW - 10 * DAY), attributes: { plan: 'free', age: 31, vip: true } },
  { internal_customer_id: 'p2', customer_id: 'c2', email_addr: 'two@example.com', created_at: iso(NOW - 80 * DAY), updated_at: iso(NOW - 9 * DAY), attributes: { plan: 'pro' } },
  { internal_customer_id: 'pdel', customer_id: 'cdel', email_addr: 'gone@example.com', deleted: true, created_at: iso(NOW - 70 * DAY), updated_at: iso(NOW - 8 * DAY), attributes: { plan: 'free' } },
  { internal_customer_id: 'psup', customer_id: 'csup', email_addr: 'quiet@example.com', suppressed: true, created_at: iso(NOW - 70 * DAY), updated_at: iso(NOW - 8 * DAY) },
];
const deliveries1 = [
  { delivery_id: 'd1', internal_customer_id: 'p1', subject_id: 's1', event_id: 'e1', delivery_type: 'email', campaign_id: 1, action_id: 11, created_at: iso(NOW - 5 * DAY) },
  { delivery_id: 'd2', internal_customer_id: 'pdel', delivery_type: 'sms', newsletter_id: 3, content_id: 4, created_at: iso(NOW - 4 * DAY) },
  { delivery_id: 'd3', internal_customer_id: 'psup', delivery_type: 'push', trigger_id: 9, transactional_message_id: 12, created_at: iso(NOW - 3 * DAY) },
];
const metrics1 = [
  { event_id: 'm1', delivery_id: 'd1', metric: 'sent', created_at: iso(NOW - 5 * DAY) },
  { event_id: 'm2', delivery_id: 'd1', metric: 'clicked', created_at: iso(NOW - 5 * DAY + 1000), link_id: 5, link_url: 'https://example.com/x' },
  { event_id: 'm3', delivery_id: 'd2', metric: 'bounced', created_at: iso(NOW - 4 * DAY), reason: 'mailbox full' },
];
const subjects1 = [
  { subject_name: 's1', internal_customer_id: 'p1', campaign_type: 'triggered', campaign_id: 1, event_id: 'e1', started_campaign_at: iso(NOW - 6 * DAY), created_at: iso(NOW - 6 * DAY) },
  { subject_name: 's2', internal_customer_id: 'pdel', campaign_type: 'segment', campaign_id: 2, trigger_id: 4, started_campaign_at: iso(NOW - 6 * DAY), created_at: iso(NOW - 6 * DAY) },
];
const outputs1 = [
  { output_id: 'o1', subject_name: 's1', output_type: 'email', action_id: 11, explanation: 'sent', delivery_id: 'd1', draft: false, link_tracked: true, split_test_index: 0, created_at: iso(NOW - 5 * DAY) },
  { output_id: 'o2', subject_name: 's1', output_type: 'delay', action_id: 12, explanation: 'waiting', delay_ends_at: iso(NOW + DAY), branch_index: 1, manual_segment_id: 8, add_to_manual_segment: true, created_at: iso(NOW - 5 * DAY) },
];
const bigBody = `<html><body>${'<p>Hello — ünïcødé ✓</p>'.repeat(12_000)}</body></html>`;
const content1 = [
  { delivery_id: 'd1', campaign_id: 1, action_id: 11, from: 'news@example.com', reply_to: 'r@example.com', recipient: 'one@example.com', subject: 'Hi', body: bigBody, body_plain: 'Hello', type: 'email', headers: '{"X-A":"1"}' },
  { delivery_id: 'd2', newsletter_id: 3, content_id: 4, recipient: 'gone@example.com', body: 'sms text', type: 'sms' },
];
const events1 = [
  { event_id: 'ev1', internal_customer_id: 'p1', name: 'purchase', type: 'event', data: '{"amount":5}', timestamp: iso(NOW - 2 * DAY) },
  { event_id: 'ev-old', internal_customer_id: 'p1', name: 'purchase', type: 'event', timestamp: iso(NOW - 40 * DAY) },
  { event_id: 'ev2', internal_customer_id: 'pdel', name: 'home', type: 'page', timestamp: iso(NOW - 1 * DAY) },
];

beforeAll(async () => {
  host = await startAppHost({ queue: `e2e-${process.pid}`, log: () => undefined });
  container = await customerContainer();
});

afterAll(async () => {
  await host?.stop();
});

describe('export pipeline end to end', () => {
  it('rejects a bad record with a field-level 400 and stores nothing', async () => {
    const bad = await post(`/workspaces/${ws}/ingest/deliveries`, [
      { delivery_id: 'ok', delivery_type: 'email', created_at: iso(NOW) },
      { delivery_id: 'bad', delivery_type: 'email', created_at: 'yesterday', campaign_id: 'x' },
    ]);
    expect(bad.status).toBe(400);
    const details = (bad.body.error as { details: { path: string }[] }).details.map((d) => d.path).sort();
    expect(details).toEqual(['[1].campaign_id', '[1].created_at']);
    expect((await post(`/workspaces/${ws}/ingest/nonsense`, [])).status).toBe(404);
    expect((await post(`/workspaces/abc/ingest/deliveries`, [])).status).toBe(400);
  });

  it('exports history, then only changes, with exact names, schemas and merged state', async () => {
    // History: ingested before the integration exists.
    await ingest('people', record('people', people1));
    await ingest('deliveries', record('deliveries', deliveries1));
    await ingest('metrics', record('metrics', metrics1));
    await ingest('subjects', record('subjects', subjects1));
    await ingest('outputs', record('outputs', outputs1));
    await ingest('delivery_contents', record('delivery_contents', content1));
    await ingest('events', record('events', events1));
    // An identical value is no change: no attribute row, but the people row is a new version.
    await ingest('people', record('people', [{ internal_customer_id: 'p2', customer_id: 'c2', email_addr: 'two@example.com', updated_at: iso(NOW - 7 * DAY), attributes: { plan: 'pro' } }]));

    const put = await post(`/workspaces/${ws}/integration`, { sasUrl: container.sasUrl, blobPath: 'warehouse', files: [...FILE_TYPES] }, 'PUT');
    expect(put.status).toBe(201);
    expect(JSON.stringify(put.body)).not.toContain('sig=');
    await sync();

    const first = await parquetNames();
    const initial = (name: string) => `warehouse/${name}_v4_${ws}_${pad(1)}.parquet`;
    expect(first).toEqual(
      [
        initial('attributes'), initial('deliveries'), initial('delivery_contents'), initial('events'),
        `warehouse/metrics_v4_${ws}_${pad(1)}_${pad(1)}.parquet`,
        initial('outputs'), initial('people'), initial('subjects'),
      ],
    );

    // Initial-sync semantics.
    const [peopleFile, attrFile, delFile, contentFile, eventsFile] = await container.download([initial('people'), initial('attributes'), initial('deliveries'), initial('delivery_contents'), initial('events')]);
    expect(await duck(`SELECT internal_customer_id FROM '${peopleFile}' ORDER BY 1`)).toEqual([{ internal_customer_id: 'p1' }, { internal_customer_id: 'p2' }]);
    expect(await duck(`SELECT internal_customer_id, attribute_name, attribute_value FROM '${attrFile}' ORDER BY 1, 2`)).toEqual([
      { internal_customer_id: 'p1', attribute_name: 'age', attribute_value: '31' },
      { internal_customer_id: 'p1', attribute_name: 'plan', attribute_value: 'free' },
      { internal_customer_id: 'p1', attribute_name: 'vip', attribute_value: 'true' },
      { internal_customer_id: 'p2', attribute_name: 'plan', attribute_value: 'pro' },
    ]);
    expect(await duck(`SELECT delivery_id, internal_customer_id FROM '${delFile}' ORDER BY 1`)).toEqual([
      { delivery_id: 'd1', internal_customer_id: 'p1' },
      { delivery_id: 'd2', internal_customer_id: null },
      { delivery_id: 'd3', internal_customer_id: null },
    ]);
    expect(await duck(`SELECT delivery_id, recipient, length(body) AS n FROM '${contentFile}' ORDER BY 1`)).toEqual([
      { delivery_id: 'd1', recipient: 'one@example.com', n: BigInt(bigBody.length) },
      { delivery_id: 'd2', recipient: null, n: 8n },
    ]);
    expect((await duck(`SELECT body FROM '${contentFile}' WHERE delivery_id = 'd1'`))[0].body).toBe(bigBody);
    expect(await duck(`SELECT event_id, internal_customer_id FROM '${eventsFile}' ORDER BY 1`)).toEqual([
      { event_id: 'ev1', internal_customer_id: 'p1' },
      { event_id: 'ev2', internal_customer_id: null },
    ]);

    // Changes between syncs: email attribute twice, an unchanged value, a deletion, new and updated rows.
    await ingest('people', record('people', [{ internal_customer_id: 'p1', customer_id: 'c1', email_addr: 'one@example.com', updated_at: iso(NOW - 3 * DAY), attributes: { email: 'company@example.com', plan: 'free' } }]));
    await ingest('people', record('people', [{ internal_customer_id: 'p1', customer_id: 'c1', email_addr: 'one@example.com', updated_at: iso(NOW - 2 * DAY), attributes: { email: 'personal@example.com', age: null } }]));
    await ingest('people', record('people', [{ internal_customer_id: 'p2', customer_id: 'c2', email_addr: 'two@example.com', deleted: true, updated_at: iso(NOW - 1 * DAY) }]));
    await ingest('people', record('people', [{ internal_customer_id: 'p3', customer_id: 'c3', created_at: iso(NOW - DAY), updated_at: iso(NOW - DAY), attributes: { plan: 'trial' } }]));
    await ingest('attributes', [{ internal_customer_id: 'p3', attribute_name: 'plan', attribute_value: 'trial' }]);
    await ingest('deliveries', record('deliveries', [{ ...deliveries1[0], campaign_id: 100 }, { delivery_id: 'd4', internal_customer_id: 'pdel', delivery_type: 'webhook', created_at: iso(NOW) }]));
    await ingest('metrics', record('metrics', [{ event_id: 'm4', delivery_id: 'd4', metric: 'sent', created_at: iso(NOW) }]));
    await ingest('subjects', record('subjects', [{ ...subjects1[1], campaign_id: 22 }]));
    await ingest('outputs', record('outputs', [{ ...outputs1[1], explanation: 'done', delay_ends_at: null }]));
    await ingest('delivery_contents', record('delivery_contents', [{ ...content1[1], body: 'updated sms text' }]));
    await ingest('events', record('events', [{ event_id: 'ev3', name: 'screen_view', type: 'screen', timestamp: iso(NOW) }]));
    await sync();

    const second = (await parquetNames()).filter((n) => !first.includes(n));
    const next = (name: string) => `warehouse/${name}_v4_${ws}_${pad(2)}.parquet`;
    expect(second).toEqual(['attributes', 'deliveries', 'delivery_contents', 'events', 'metrics', 'outputs', 'people', 'subjects'].map(next));
    const [attr2, people2, del2] = await container.download([next('attributes'), next('people'), next('deliveries')]);
    // Two email changes between syncs → one row with the latest value; the unchanged plan → no row; a removal → null.
    expect(await duck(`SELECT internal_customer_id, attribute_name, attribute_value, epoch_ms(timestamp) AS ts FROM '${attr2}' ORDER BY 1, 2`)).toEqual([
      { internal_customer_id: 'p1', attribute_name: 'age', attribute_value: null, ts: BigInt(NOW - 2 * DAY) },
      { internal_customer_id: 'p1', attribute_name: 'email', attribute_value: 'personal@example.com', ts: BigInt(NOW - 2 * DAY) },
      { internal_customer_id: 'p3', attribute_name: 'plan', attribute_value: 'trial', ts: BigInt(NOW - DAY) },
    ]);
    expect(await duck(`SELECT internal_customer_id, deleted FROM '${people2}' ORDER BY 1`)).toEqual([
      { internal_customer_id: 'p1', deleted: false },
      { internal_customer_id: 'p2', deleted: true },
      { internal_customer_id: 'p3', deleted: false },
    ]);
    // Changesets keep the initial sync's rule: pdel was deleted before it, so its new delivery goes out without its id.
    expect(await duck(`SELECT delivery_id, internal_customer_id, campaign_id FROM '${del2}' ORDER BY 1`)).toEqual([
      { delivery_id: 'd1', internal_customer_id: 'p1', campaign_id: 100n },
      { delivery_id: 'd4', internal_customer_id: null, campaign_id: null },
    ]);

    // A third tick with nothing new writes nothing (no empty files).
    await sync();
    expect((await parquetNames()).length).toBe(first.length + second.length);

    // Every file of every type: exact columns, order and types.
    const all = await parquetNames();
    for (const fileType of FILE_TYPES) {
      const name = SCHEMAS[fileType].name;
      const files = await container.download(all.filter((n) => n.startsWith(`warehouse/${name}_v4_`)));
      expect(files.length).toBe(2);
      for (const f of files) {
        const described = await duck(`DESCRIBE SELECT * FROM '${f}'`);
        expect(described.map((d) => [d.column_name, d.column_type])).toEqual(SCHEMAS[fileType].columns.map((c) => [c.name, DUCK_TYPES[c.type]]));
        const physical = await duck(`SELECT name, repetition_type FROM parquet_schema('${f}')`);
        expect(physical.slice(1).map((p) => [p.name, p.repetition_type])).toEqual(SCHEMAS[fileType].columns.map((c) => [c.name, c.required ? 'REQUIRED' : 'OPTIONAL']));
      }
      // The warehouse: load every file in sequence order, keep the latest row per key.
      expect(await mergedState(fileType, files)).toEqual(expectedState(fileType));
    }
  });
});

describe('export queue', () => {
  it('moves a malformed message to the poison queue after maxDequeueCount, and keeps working', async () => {
    const { QueueClient } = await import('@azure/storage-queue');
    const queueName = process.env.EXPORT_QUEUE_NAME!;
    const queue = new QueueClient(inject('storageConnectionString'), queueName);
    const poison = new QueueClient(inject('storageConnectionString'), `${queueName}-poison`);
    await poison.clearMessages().catch(() => undefined);
    await queue.sendMessage(Buffer.from(JSON.stringify({ workspaceId: 'x', fileType: 'nope' })).toString('base64'));
    await queue.sendMessage('%%% not base64 json %%%');
    await host.whenIdle({ timeoutMs: 30_000 });
    const peeked = await poison.peekMessages({ numberOfMessages: 10 });
    const texts = peeked.peekedMessageItems.map((m) => m.messageText).sort();
    expect(texts).toHaveLength(2);
    expect(texts).toContain(Buffer.from(JSON.stringify({ workspaceId: 'x', fileType: 'nope' })).toString('base64'));
    // A valid request right after still works.
    expect((await post(`/workspaces/${ws}/ingest/events`, [{ event_id: 'after-poison', name: 'x', type: 'event', timestamp: iso(NOW) }])).status).toBe(202);
  });
});

async function parquetNames(): Promise<string[]> {
  return (await container.list('warehouse/')).filter((n) => n.endsWith('.parquet'));
}

/** Merge rule of SPEC section 5.4. */
async function mergedState(fileType: FileType, files: string[]): Promise<Rec[]> {
  const schema = SCHEMAS[fileType];
  const order = fileType === 'people' ? 'updated_at DESC' : fileType === 'attributes' ? 'timestamp DESC' : fileType === 'content' ? 'filename DESC' : 'seq_num DESC';
  const pk = schema.primaryKey.map((k) => `"${k}"`).join(', ');
  const cols = schema.columns.filter((c) => c.name !== 'seq_num');
  const select = cols.map((c) => (c.type === 'TIMESTAMP' ? `epoch_ms("${c.name}") AS "${c.name}"` : `"${c.name}"`)).join(', ');
  const rows = await duck(
    `SELECT ${select} FROM (SELECT *, row_number() OVER (PARTITION BY ${pk} ORDER BY ${order}) AS rn FROM read_parquet(${sqlList(files)}, filename = true)) WHERE rn = 1` +
      (fileType === 'attributes' ? ' AND attribute_value IS NOT NULL' : '') +
      (fileType === 'people' ? '' : '') +
      ` ORDER BY ${pk}`,
  );
  return rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v])));
}

/** The source's current state, computed from what the test ingested. */
function expectedState(fileType: FileType): Rec[] {
  const schema = SCHEMAS[fileType];
  const deletedAtFirstSync = new Set(['pdel', 'psup']);
  const ts = (v: unknown) => (typeof v === 'string' ? Date.parse(v) : v);
  const rowOf = (r: Rec) => Object.fromEntries(schema.columns.filter((c) => c.name !== 'seq_num').map((c) => [c.name, c.name === 'workspace_id' ? ws : c.type === 'TIMESTAMP' ? (ts(r[c.name]) ?? null) : (r[c.name] ?? null)]));
  const key = (r: Rec) => schema.primaryKey.map((k) => String(r[k])).join('|');
  if (fileType === 'attributes') {
    const state = new Map<string, Rec>();
    for (const p of source.people) {
      if (deletedAtFirstSync.has(p.internal_customer_id as string)) continue;
      for (const [name, value] of Object.entries((p.attributes ?? {}) as Rec)) {
        const k = `${p.internal_customer_id}|${name}`;
        if (value === null) state.delete(k);
        else if (state.get(k)?.attribute_value !== (typeof value === 'string' ? value : JSON.stringify(value)))
          state.set(k, { workspace_id: ws, internal_customer_id: p.internal_customer_id, attribute_name: name, attribute_value: typeof value === 'string' ? value : JSON.stringify(value), timestamp: ts(p.updated_at) });
      }
    }
    return [...state.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, v]) => v);
  }
  const state = new Map<string, Rec>();
  for (const r of source[schema.name]) {
    if (fileType === 'people') {
      const prev = state.get(key(r));
      state.set(key(r), { ...rowOf(r), deleted: r.deleted === true, suppressed: r.suppressed === true, created_at: prev?.created_at ?? ts(r.created_at) });
    } else state.set(key(r), rowOf(r));
  }
  if (fileType === 'people') for (const id of deletedAtFirstSync) state.delete(id);
  if (fileType === 'events') state.delete('ev-old');
  // Rows of people deleted/suppressed before the first sync are anonymized, in the initial files and in
  // changesets (d4, s2 changed after it); content by the person of its delivery.
  const ownerOf = new Map(source.deliveries.map((d) => [d.delivery_id, d.internal_customer_id as string]));
  for (const r of state.values()) {
    if ('internal_customer_id' in r && deletedAtFirstSync.has(r.internal_customer_id as string)) r.internal_customer_id = null;
    if (fileType === 'content' && deletedAtFirstSync.has(ownerOf.get(r.delivery_id) as string)) r.recipient = null;
  }
  return [...state.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, v]) => v);
}
