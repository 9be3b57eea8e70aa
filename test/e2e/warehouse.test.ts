// docs/warehouse/duckdb/load.sql, run as written (only export_path is set before it), against files the
// real pipeline exported: all 8 types, two syncs with updates in between, several files per sync
// (EXPORT_MAX_ROWS_PER_FILE = 2). The loaded tables must equal the source state this test computes
// from what it ingested (SPEC section 5.4): incrementally (sync 1, then only sync 2's files, as if the
// first ones had expired), from scratch over every file, and again over the same files (no change).
// Then the merge model itself: the same files loaded in random orders, in random batches, each file
// twice, must give exactly the state of a load in name order and of SPEC 5.4's rule applied in TS.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FILE_TYPES, SCHEMAS, type FileType } from '../../src/lib/contract/schemas.js';
import { duckDatabase, filePrefix, startPipeline, tempDir, type Pipeline, type Rec } from '../support/readers.js';
import { FILE_SEQ, renderRecipes } from '../../docs/warehouse/recipes.js';

const LOAD_SQL = readFileSync(new URL('../../docs/warehouse/duckdb/load.sql', import.meta.url), 'utf8');
const BLOB_PATH = 'exports/wh';
const DAY = 24 * 3600 * 1000;
const NOW = Date.now() - (Date.now() % 1000) + 123; // millisecond precision must survive
const iso = (ms: number) => new Date(ms).toISOString();
const DUCK_TYPES = { INTEGER: 'BIGINT', STRING: 'VARCHAR', BOOLEAN: 'BOOLEAN', TIMESTAMP: 'TIMESTAMP WITH TIME ZONE' };
const table = (t: FileType) => SCHEMAS[t].name;

let pipeline: Pipeline;
/** Scratch folder; `<work>/all` holds every exported file once the merge test has run. */
let work: string | undefined;

/** The script as shipped, preceded by the one line a user runs first. */
async function load(db: Awaited<ReturnType<typeof duckDatabase>>, folder: string) {
  await db.rows(`SET VARIABLE export_path = '${folder.replace(/'/g, "''")}'`);
  return db.rows(LOAD_SQL);
}

// --- the source, modelled as the test ingests it: expected warehouse rows per table -------------

interface Person {
  customer_id: string;
  email_addr: string | null;
  deleted: boolean;
  suppressed: boolean;
  created_at: number;
  updated_at: number;
  attrs: Map<string, string>;
}
const persons = new Map<string, Person>();
const expected = Object.fromEntries(FILE_TYPES.map((t) => [t, new Map<string, Rec>()])) as Record<FileType, Map<string, Rec>>;
const keyOf = (t: FileType, r: Rec) => SCHEMAS[t].primaryKey.map((k) => String(r[k])).join('|');
const ms = (v: unknown) => (typeof v === 'string' ? Date.parse(v) : v);

/** A record as its warehouse row: every SPEC column but seq_num, timestamps in epoch ms, absent = null. */
function rowOf(t: FileType, r: Rec): Rec {
  const cols = SCHEMAS[t].columns.filter((c) => c.name !== 'seq_num');
  return Object.fromEntries(cols.map((c) => [c.name, c.name === 'workspace_id' ? pipeline.ws : c.type === 'TIMESTAMP' ? (ms(r[c.name]) ?? null) : (r[c.name] ?? null)]));
}

/** People deleted or suppressed before the first sync (set by initialSyncSemantics), and each delivery's person. */
const goneAtFirstSync = new Set<string>();
const deliveryOwner = new Map<unknown, string>();

/** SPEC section 4: such a person's rows lose their id, and content of their deliveries its recipient. */
function anonymized(t: FileType, row: Rec): Rec {
  if (t !== 'people' && t !== 'attributes' && goneAtFirstSync.has(row.internal_customer_id as string)) row.internal_customer_id = null;
  if (t === 'content' && goneAtFirstSync.has(deliveryOwner.get(row.delivery_id) as string)) row.recipient = null;
  return row;
}

async function ingest(t: FileType, records: Rec[]) {
  await pipeline.ingest(table(t), records);
  for (const r of records) {
    if (t === 'deliveries') deliveryOwner.set(r.delivery_id, r.internal_customer_id as string);
    expected[t].set(keyOf(t, r), anonymized(t, rowOf(t, r)));
  }
}

const attrText = (v: unknown) => (v === null ? null : typeof v === 'string' ? v : JSON.stringify(v));
function setAttribute(id: string, name: string, value: unknown, at: number) {
  const p = persons.get(id)!;
  const text = attrText(value);
  if ((p.attrs.get(name) ?? null) === text) return; // an unchanged value is no change
  const key = `${id}|${name}`;
  if (text === null) {
    p.attrs.delete(name);
    expected.attributes.delete(key);
  } else {
    p.attrs.set(name, text);
    expected.attributes.set(key, { workspace_id: pipeline.ws, internal_customer_id: id, attribute_name: name, attribute_value: text, timestamp: at });
  }
}

async function ingestPeople(records: Rec[]) {
  await pipeline.ingest('people', records);
  for (const r of records) {
    const id = r.internal_customer_id as string;
    const prev = persons.get(id);
    const p: Person = {
      customer_id: r.customer_id as string,
      email_addr: r.email_addr === undefined ? (prev?.email_addr ?? null) : (r.email_addr as string | null),
      deleted: (r.deleted as boolean | undefined) ?? prev?.deleted ?? false,
      suppressed: (r.suppressed as boolean | undefined) ?? prev?.suppressed ?? false,
      created_at: prev?.created_at ?? (ms(r.created_at) as number),
      updated_at: ms(r.updated_at) as number,
      attrs: prev?.attrs ?? new Map(),
    };
    persons.set(id, p);
    const { attrs: _attrs, ...row } = p;
    expected.people.set(id, { workspace_id: pipeline.ws, internal_customer_id: id, ...row });
    for (const [name, value] of Object.entries((r.attributes ?? {}) as Rec)) setAttribute(id, name, value, p.updated_at);
  }
}

async function ingestAttributes(records: Rec[]) {
  await pipeline.ingest('attributes', records);
  for (const r of records) setAttribute(r.internal_customer_id as string, r.attribute_name as string, r.attribute_value, ms(r.timestamp) as number);
}

/** The initial sync: people deleted or suppressed by then are left out, their history anonymized. */
function initialSyncSemantics() {
  for (const [id, p] of persons) if (p.deleted || p.suppressed) goneAtFirstSync.add(id);
  for (const id of goneAtFirstSync) expected.people.delete(id);
  for (const [k, r] of expected.attributes) if (goneAtFirstSync.has(r.internal_customer_id as string)) expected.attributes.delete(k);
  for (const t of FILE_TYPES) for (const r of expected[t].values()) anonymized(t, r);
}

const sorted = (t: FileType) => [...expected[t].entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, r]) => ({ ...r }));

/** A loaded table, seq_num left out (the source assigns it), timestamps as epoch ms, ordered by key. */
async function loaded(db: Awaited<ReturnType<typeof duckDatabase>>, t: FileType, from = table(t)): Promise<Rec[]> {
  const cols = SCHEMAS[t].columns.filter((c) => c.name !== 'seq_num');
  const rows = await db.rows(`SELECT ${selectList(cols)} FROM ${from} ORDER BY ${SCHEMAS[t].primaryKey.map((k) => `"${k}"`).join(', ')}`);
  return rows.map(plain);
}
const selectList = (cols: readonly { name: string; type: string }[]) =>
  cols.map((c) => (c.type === 'TIMESTAMP' ? `epoch_ms("${c.name}") AS "${c.name}"` : `"${c.name}"`)).join(', ');
const plain = (r: Rec) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v]));

/** Every table (attributes: the view without the removal tombstones) equals the source model. */
async function expectWarehouseEqualsSource(db: Awaited<ReturnType<typeof duckDatabase>>) {
  for (const t of FILE_TYPES) expect(await loaded(db, t, t === 'attributes' ? 'attributes_current' : table(t)), table(t)).toEqual(sorted(t));
}

// --- data ---------------------------------------------------------------------------------------

const bigBody = (tag: string) => `<html><body>${`<p>${tag} — ünïcødé ✓ 🚀</p>`.repeat(10_000)}</body></html>`; // ~300 KiB

beforeAll(async () => {
  pipeline = await startPipeline({ EXPORT_MAX_ROWS_PER_FILE: '2' });
});

afterAll(async () => {
  await pipeline?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('docs/warehouse recipes', () => {
  it('DuckDB, Snowflake, BigQuery, Synapse and Fabric SQL are generated from the current schemas (npx tsx docs/warehouse/recipes.ts)', () => {
    for (const [file, text] of Object.entries(renderRecipes())) {
      expect(readFileSync(new URL(`../../docs/warehouse/${file}`, import.meta.url), 'utf8'), `docs/warehouse/${file} is stale`).toBe(text);
    }
  });

  it('the lifecycle rule deletes block blobs under a prefix some days after creation', () => {
    const policy = JSON.parse(readFileSync(new URL('../../docs/warehouse/lifecycle-policy.json', import.meta.url), 'utf8'));
    expect(policy.rules[0]).toMatchObject({
      enabled: true,
      type: 'Lifecycle',
      definition: { filters: { blobTypes: ['blockBlob'], prefixMatch: [expect.stringMatching(/\/$/)] }, actions: { baseBlob: { delete: { daysAfterCreationGreaterThan: 7 } } } },
    });
  });
});

describe('docs/warehouse/duckdb/load.sql on exported files', () => {
  it('refuses to run without export_path, naming the variable', async () => {
    const db = await duckDatabase();
    try {
      await expect(db.rows(LOAD_SQL)).rejects.toThrow(/SET VARIABLE export_path/);
    } finally {
      db.close();
    }
  });

  it('merges two syncs into the source state: incrementally, from scratch, and idempotently', async () => {
    const { ws } = pipeline;
    // History, before the integration exists.
    await ingestPeople([
      { internal_customer_id: 'p1', customer_id: 'c1', email_addr: 'one@example.com', created_at: iso(NOW - 90 * DAY), updated_at: iso(NOW - 10 * DAY), attributes: { plan: 'free', age: 31, vip: true } },
      { internal_customer_id: 'p2', customer_id: 'c2', email_addr: 'two@example.com', created_at: iso(NOW - 80 * DAY), updated_at: iso(NOW - 9 * DAY), attributes: { plan: 'pro' } },
      { internal_customer_id: 'p3', customer_id: 'c3', created_at: iso(NOW - 70 * DAY), updated_at: iso(NOW - 8 * DAY) },
      { internal_customer_id: 'pgone', customer_id: 'cgone', email_addr: 'gone@example.com', deleted: true, created_at: iso(NOW - 60 * DAY), updated_at: iso(NOW - 7 * DAY), attributes: { plan: 'free' } },
    ]);
    await ingest('deliveries', [
      { delivery_id: 'd1', internal_customer_id: 'p1', subject_id: 's1', event_id: 'e1', delivery_type: 'email', campaign_id: 1, action_id: 11, created_at: iso(NOW - 5 * DAY) },
      { delivery_id: 'd2', internal_customer_id: 'pgone', delivery_type: 'sms', newsletter_id: 3, content_id: 4, created_at: iso(NOW - 4 * DAY) },
      { delivery_id: 'd3', internal_customer_id: 'p2', delivery_type: 'push', trigger_id: 9, transactional_message_id: 12, created_at: iso(NOW - 3 * DAY) },
    ]);
    await ingest('deliveries', [{ delivery_id: 'd3', internal_customer_id: 'p2', delivery_type: 'push', trigger_id: 10, created_at: iso(NOW - 3 * DAY) }]); // a newer version before the first sync
    await ingest('metrics', [
      { event_id: 'm1', delivery_id: 'd1', metric: 'sent', created_at: iso(NOW - 5 * DAY) },
      { event_id: 'm2', delivery_id: 'd1', metric: 'clicked', created_at: iso(NOW - 5 * DAY + 1), link_id: 5, link_url: 'https://example.com/x' },
      { event_id: 'm3', delivery_id: 'd2', metric: 'bounced', created_at: iso(NOW - 4 * DAY), reason: 'mailbox full' },
      { event_id: 'm4', delivery_id: 'd3', metric: 'delivered', created_at: iso(NOW - 3 * DAY) },
      { event_id: 'm5', delivery_id: 'd3', metric: 'opened', created_at: iso(NOW - 3 * DAY + 999) },
    ]);
    await ingest('subjects', [
      { subject_name: 's1', internal_customer_id: 'p1', campaign_type: 'triggered', campaign_id: 1, event_id: 'e1', started_campaign_at: iso(NOW - 6 * DAY), created_at: iso(NOW - 6 * DAY) },
      { subject_name: 's2', internal_customer_id: 'pgone', campaign_type: 'segment', campaign_id: 2, trigger_id: 4, started_campaign_at: iso(NOW - 6 * DAY), created_at: iso(NOW - 6 * DAY) },
    ]);
    await ingest('outputs', [
      { output_id: 'o1', subject_name: 's1', output_type: 'email', action_id: 11, explanation: 'sent', delivery_id: 'd1', draft: false, link_tracked: true, split_test_index: 0, created_at: iso(NOW - 5 * DAY) },
      { output_id: 'o2', subject_name: 's1', output_type: 'delay', action_id: 12, explanation: 'waiting', delay_ends_at: iso(NOW + DAY), branch_index: 1, manual_segment_id: 8, add_to_manual_segment: true, created_at: iso(NOW - 5 * DAY) },
      { output_id: 'o3', subject_name: 's2', output_type: 'exit', action_id: 13, explanation: 'left', created_at: iso(NOW - 4 * DAY) },
    ]);
    await ingest('content', [
      { delivery_id: 'd1', campaign_id: 1, action_id: 11, from: 'news@example.com', reply_to: 'r@example.com', recipient: 'one@example.com', subject: 'Hi', body: bigBody('v1'), body_plain: 'Hello', type: 'email', headers: '{"X-A":"1"}' },
      { delivery_id: 'd2', newsletter_id: 3, content_id: 4, recipient: 'gone@example.com', body: 'sms text', type: 'sms' },
      { delivery_id: 'd3', recipient: 'two@example.com', body: '', type: 'push', url: 'https://example.com/p', method: 'POST' },
    ]);
    await ingest('events', [
      { event_id: 'ev1', internal_customer_id: 'p1', name: 'purchase', type: 'event', data: '{"amount":5}', timestamp: iso(NOW - 2 * DAY) },
      { event_id: 'ev2', internal_customer_id: 'pgone', name: 'home', type: 'page', timestamp: iso(NOW - 1 * DAY) },
      { event_id: 'ev3', internal_customer_id: 'p2', name: 'settings', type: 'screen', timestamp: iso(NOW - 1 * DAY + 5) },
    ]);

    await pipeline.connect(BLOB_PATH);
    await pipeline.sync();
    initialSyncSemantics();
    const first = await pipeline.files(BLOB_PATH);
    // Several files per type in one sync, so the order the script reads them in matters.
    expect(first.filter((n) => path.posix.basename(n).startsWith(filePrefix('metrics', ws))).length).toBeGreaterThanOrEqual(3);
    expect(first.some((n) => n.endsWith(`metrics_v4_${ws}_${'1'.padStart(20, '0')}_${'2'.padStart(20, '0')}.parquet`))).toBe(true);
    expect(first.filter((n) => path.posix.basename(n).startsWith(filePrefix('attributes', ws))).length).toBeGreaterThanOrEqual(2);

    work = tempDir('warehouse-');
    const dbFile = path.join(work, 'warehouse.duckdb');
    const sync1 = path.join(work, 'sync1');
    await pipeline.download(first, sync1);
    let db = await duckDatabase(dbFile);
    await load(db, sync1);
    await expectWarehouseEqualsSource(db);
    db.close();

    // Changes between the syncs.
    await ingestPeople([{ internal_customer_id: 'p1', customer_id: 'c1', updated_at: iso(NOW - 3 * DAY), attributes: { email: 'company@example.com', plan: 'free' } }]);
    await ingestPeople([{ internal_customer_id: 'p1', customer_id: 'c1', email_addr: 'personal@example.com', updated_at: iso(NOW - 2 * DAY), attributes: { email: 'personal@example.com', age: null } }]);
    await ingestPeople([
      { internal_customer_id: 'p2', customer_id: 'c2', deleted: true, updated_at: iso(NOW - 1 * DAY) },
      { internal_customer_id: 'p4', customer_id: 'c4', email_addr: 'four@example.com', suppressed: true, created_at: iso(NOW - DAY), updated_at: iso(NOW - DAY), attributes: { plan: 'trial', ltv: 12.5 } },
    ]);
    await ingestAttributes([
      { internal_customer_id: 'p3', attribute_name: 'score', attribute_value: 10, timestamp: iso(NOW - 12 * 3600 * 1000) },
      // Keys that a case-insensitive or space-padding comparison would merge: three attributes.
      { internal_customer_id: 'p3', attribute_name: 'plan', attribute_value: 'a', timestamp: iso(NOW - 12 * 3600 * 1000) },
      { internal_customer_id: 'p3', attribute_name: 'Plan', attribute_value: 'b', timestamp: iso(NOW - 12 * 3600 * 1000) },
      { internal_customer_id: 'p3', attribute_name: 'plan ', attribute_value: 'c', timestamp: iso(NOW - 12 * 3600 * 1000) },
      { internal_customer_id: 'p1', attribute_name: 'vip', attribute_value: null, timestamp: iso(NOW - 11 * 3600 * 1000) },
    ]);
    await ingestAttributes([{ internal_customer_id: 'p1', attribute_name: 'vip', attribute_value: 'gold', timestamp: iso(NOW - 10 * 3600 * 1000) }]); // removed, then back
    await ingest('deliveries', [
      { delivery_id: 'd1', internal_customer_id: 'p1', subject_id: 's1', event_id: 'e1', delivery_type: 'email', campaign_id: 100, action_id: 11, created_at: iso(NOW - 5 * DAY) },
      { delivery_id: 'd4', internal_customer_id: 'pgone', delivery_type: 'webhook', created_at: iso(NOW) },
    ]);
    await ingest('metrics', [
      { event_id: 'm3', delivery_id: 'd2', metric: 'bounced', created_at: iso(NOW - 4 * DAY), reason: 'no such user' },
      { event_id: 'm6', delivery_id: 'd4', metric: 'sent', created_at: iso(NOW) },
    ]);
    await ingest('subjects', [{ subject_name: 's2', internal_customer_id: 'pgone', campaign_type: 'segment', campaign_id: 22, trigger_id: 4, started_campaign_at: iso(NOW - 6 * DAY), created_at: iso(NOW - 6 * DAY) }]);
    await ingest('outputs', [{ output_id: 'o2', subject_name: 's1', output_type: 'delay', action_id: 12, explanation: 'done', branch_index: 1, manual_segment_id: 8, add_to_manual_segment: false, created_at: iso(NOW - 5 * DAY) }]);
    await ingest('content', [{ delivery_id: 'd1', campaign_id: 1, action_id: 11, from: 'news@example.com', recipient: 'one@example.com', subject: 'Hi again', body: bigBody('v2'), type: 'email' }]);
    await ingest('content', [{ delivery_id: 'd2', newsletter_id: 3, content_id: 4, recipient: 'gone@example.com', body: 'updated sms text', type: 'sms' }]);
    await ingest('events', [
      { event_id: 'ev1', internal_customer_id: 'p1', name: 'purchase', type: 'event', data: '{"amount":7}', timestamp: iso(NOW - 2 * DAY) },
      { event_id: 'ev4', name: 'anonymous', type: 'page', timestamp: iso(NOW) },
    ]);
    await pipeline.sync();

    const all = await pipeline.files(BLOB_PATH);
    const second = all.filter((n) => !first.includes(n));
    for (const t of FILE_TYPES) expect(second.some((n) => path.posix.basename(n).startsWith(filePrefix(t, ws))), table(t)).toBe(true);

    // Incremental: the same database, a folder holding only the second sync's files.
    const sync2 = path.join(work, 'sync2');
    await pipeline.download(second, sync2);
    db = await duckDatabase(dbFile);
    await load(db, sync2);
    await expectWarehouseEqualsSource(db);
    const logged = await db.rows(`SELECT file_name FROM export_loaded_files ORDER BY file_name`);
    expect(logged.map((r) => r.file_name)).toEqual(all.map((n) => path.posix.basename(n)).sort());

    // Idempotent: every file present again, all of them already loaded → nothing changes.
    const everything = path.join(work, 'all');
    await pipeline.download(all, everything);
    await load(db, everything);
    await expectWarehouseEqualsSource(db);
    expect((await db.rows(`SELECT count(*)::INTEGER AS n FROM export_loaded_files`))[0].n).toBe(all.length);
    db.close();

    // From scratch: a new database over every file at once.
    const fresh = await duckDatabase();
    try {
      await load(fresh, everything);
      await expectWarehouseEqualsSource(fresh);
      // Tables have exactly the SPEC columns, in order, with their types and NOT NULL where required,
      // then the position column the merge keeps.
      for (const t of FILE_TYPES) {
        const cols = await fresh.rows(`SELECT column_name, data_type, is_nullable FROM duckdb_columns() WHERE table_name = '${table(t)}' ORDER BY column_index`);
        expect(cols.map((c) => [c.column_name, c.data_type, c.is_nullable]), table(t)).toEqual([
          ...SCHEMAS[t].columns.map((c) => [c.name, DUCK_TYPES[c.type], !c.required]),
          [FILE_SEQ, 'BIGINT', false],
        ]);
      }
      // An attribute removed after it was exported stays as a tombstone: null value, the removal's time.
      expect((await fresh.rows(`SELECT internal_customer_id, attribute_name, attribute_value, epoch_ms("timestamp") AS ts FROM attributes WHERE attribute_value IS NULL`)).map(plain)).toEqual([
        { internal_customer_id: 'p1', attribute_name: 'age', attribute_value: null, ts: NOW - 2 * DAY },
      ]);
      // seq_num in the table is the highest one exported for its key.
      for (const t of FILE_TYPES.filter((f) => SCHEMAS[f].columns.some((c) => c.name === 'seq_num'))) {
        const pk = SCHEMAS[t].primaryKey.map((k) => `"${k}"`).join(', ');
        const wrong = await fresh.rows(
          `SELECT ${pk} FROM ${table(t)} JOIN (SELECT ${pk}, max(seq_num) AS top FROM read_parquet('${everything}/${filePrefix(t, ws)}*.parquet') GROUP BY ALL) USING (${pk}) WHERE seq_num <> top`,
        );
        expect(wrong, table(t)).toEqual([]);
      }
      expect((await fresh.rows(`SELECT body FROM delivery_contents WHERE delivery_id = 'd1'`))[0].body).toBe(bigBody('v2'));
    } finally {
      fresh.close();
    }
  });


  it('converges to the same state whatever the load order and however often a file is loaded (fast-check)', async () => {
    expect(work, 'needs the files of the previous test').toBeDefined();
    const everything = path.join(work!, 'all');
    const files = readdirSync(everything).sort();
    const reference = await specState(everything);
    // (a) name order: one run over the folder.
    const byName = await loadInBatches(everything, [files]);
    expect(byName).toEqual(reference);
    expect(byName.attributes.filter((r) => r.internal_customer_id === 'p3' && /^plan/i.test(r.attribute_name as string)).map((r) => r.attribute_value).sort()).toEqual(['a', 'b', 'c']);
    // The earlier recipe's failures, directly: after everything, each attributes file (one holds
    // the removed attribute's value) and each content file (one holds the previous body) again.
    const again = files.filter((f) => f.startsWith(filePrefix('attributes', pipeline.ws)) || f.startsWith(filePrefix('content', pipeline.ws)));
    expect(again.length).toBeGreaterThanOrEqual(4);
    expect(await loadInBatches(everything, [files, ...again.map((f) => [f])])).toEqual(byName);
    // Load orders that matter: the newest file first, and every file twice (again newest first).
    const reversed = [...files].reverse();
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.shuffledSubarray(files, { minLength: files.length, maxLength: files.length }),
        fc.option(fc.shuffledSubarray(files, { minLength: files.length, maxLength: files.length }), { nil: undefined, freq: 1 }),
        fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 12 }),
        async (order, again, sizes) => {
          runs++;
          // (b) a random order, in random batches; (c) with every file loaded a second time.
          const state = await loadInBatches(everything, batchesOf([...order, ...(again ?? [])], sizes));
          expect(state).toEqual(byName);
        },
      ),
      { numRuns: 6, examples: [[reversed, reversed, [1]], [files, files, [3]]] },
    );
    expect(runs).toBe(6); // the two examples, then four random cases
  });
});

// --- the merge model under any load order -------------------------------------------------------

type State = Record<string, Rec[]>;
/** Long strings (content bodies) as length + digest, so a failing comparison stays readable. */
const short = (r: Rec): Rec =>
  Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'string' && v.length > 100 ? `${v.length} chars, sha256 ${createHash('sha256').update(v).digest('hex').slice(0, 16)}` : v]));
const SPEC_ORDER: Partial<Record<FileType, string>> = { people: 'updated_at', attributes: 'timestamp', content: undefined };
const orderColumn = (t: FileType) => (t in SPEC_ORDER ? SPEC_ORDER[t] : 'seq_num');
const byKey = (t: FileType) => (a: Rec, b: Rec) => {
  for (const k of SCHEMAS[t].primaryKey) if (a[k] !== b[k]) return String(a[k]) < String(b[k]) ? -1 : 1;
  return 0;
};

/**
 * SPEC section 5.4 applied literally, in TS: every file of a type in sequence (= name) order, per key
 * the row with the highest seq_num (people: latest updated_at; attributes: latest timestamp, a removal
 * included; content: the latest file's row), a tie to the later file; plus that file's sequence.
 */
async function specState(folder: string): Promise<State> {
  const db = await duckDatabase();
  try {
    const state: State = {};
    for (const t of FILE_TYPES) {
      const rows = await db.rows(
        `SELECT ${selectList(SCHEMAS[t].columns)}, parse_filename(filename) AS file_name
         FROM read_parquet('${folder}/${table(t)}_v4_*.parquet', filename = true, file_row_number = true) ORDER BY file_name, file_row_number`,
      );
      const kept = new Map<string, Rec>();
      const order = orderColumn(t);
      for (const { file_name, ...row } of rows.map(plain)) {
        const prev = kept.get(keyOf(t, row));
        if (prev && order && (row[order] as number) < (prev[order] as number)) continue;
        kept.set(keyOf(t, row), short({ ...row, [FILE_SEQ]: Number(/_v4_\d+_(\d+)/.exec(file_name as string)![1]) }));
      }
      state[t] = [...kept.values()].sort(byKey(t));
    }
    return state;
  } finally {
    db.close();
  }
}

/** Every table as rows (timestamps in epoch ms, the position column included), sorted by key. */
async function tableState(db: Awaited<ReturnType<typeof duckDatabase>>): Promise<State> {
  const state: State = {};
  for (const t of FILE_TYPES) state[t] = (await db.rows(`SELECT ${selectList(SCHEMAS[t].columns)}, ${FILE_SEQ} FROM ${table(t)}`)).map((r) => short(plain(r))).sort(byKey(t));
  return state;
}

/** A new database; per batch, load.sql over a folder holding just those files, the load log forgotten first. */
async function loadInBatches(from: string, batches: string[][]): Promise<State> {
  const scratch = tempDir('warehouse-order-');
  const db = await duckDatabase();
  try {
    for (const [i, batch] of batches.entries()) {
      const dir = path.join(scratch, String(i));
      mkdirSync(dir);
      for (const f of batch) symlinkSync(path.join(from, f), path.join(dir, f));
      if (i > 0) await db.rows(`DELETE FROM export_loaded_files`); // so a file seen before is merged again
      await load(db, dir);
    }
    return await tableState(db);
  } finally {
    db.close();
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Cuts a load sequence into batches of the given sizes (cycled); a file never twice in one batch. */
function batchesOf(sequence: string[], sizes: number[]): string[][] {
  const out: string[][] = [];
  let current: string[] = [];
  for (const f of sequence) {
    if (current.length >= sizes[out.length % sizes.length] || current.includes(f)) {
      out.push(current);
      current = [];
    }
    current.push(f);
  }
  return current.length ? [...out, current] : out;
}
