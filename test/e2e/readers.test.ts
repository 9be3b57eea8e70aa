// Two readers that share no code with our writer (hyparquet-writer) open one exported file of every
// file type: DuckDB (its own C++ parquet reader) and parquet-wasm (arrow-rs compiled to WebAssembly,
// decoded with apache-arrow). Both must return exactly what was ingested: nulls vs empty strings,
// INT64 extremes, booleans, timestamps (before 1970, with an offset, millisecond precision) and a
// content body of several hundred KiB, byte for byte.
//
// parquet-wasm and apache-arrow are loaded from the repo's dependencies or else from the folder named
// by PARQUET_WASM_DIR; when neither has them, the parquet-wasm test is skipped with the reason.
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FILE_TYPES, SCHEMAS, type FileType } from '../../src/lib/contract/schemas.js';
import { duckDatabase, filePrefix, loadParquetWasm, pageCensus, startPipeline, tempDir, type Pipeline, type Rec } from '../support/readers.js';

const arrow = await loadParquetWasm();
const unavailable = 'unavailable' in arrow ? arrow.unavailable : undefined;
if (unavailable) console.warn(`readers.test.ts: parquet-wasm test skipped: ${unavailable}`);

const DAY = 24 * 3600 * 1000;
const NOW = Date.now() - (Date.now() % 1000) + 7;
const iso = (ms: number) => new Date(ms).toISOString();
const MAX = Number.MAX_SAFE_INTEGER;
const MIN = Number.MIN_SAFE_INTEGER;
// ~430 KiB of UTF-8: 1-, 2-, 3- and 4-byte characters, quotes, a tab, newlines.
const BIG_BODY = `<html><body>\n${'<tr><td class="x">Grüße — 価格 €5 𝄞 🚀\t"q" \'s\'</td></tr>\n'.repeat(8_000)}</body></html>`;

/** What the test ingests, per file type (ingest bodies: no workspace_id, no seq_num). */
const INGESTED: Record<Exclude<FileType, 'people' | 'attributes'>, Rec[]> = {
  deliveries: [
    { delivery_id: 'd-full', internal_customer_id: 'p1', subject_id: 's1', event_id: 'e1', delivery_type: 'email', campaign_id: MAX, action_id: 0, newsletter_id: -1, content_id: MIN, trigger_id: 3, created_at: '1969-07-20T20:17:40.123Z', transactional_message_id: 2 ** 40 },
    { delivery_id: 'd-min', delivery_type: 'sms', created_at: '2999-12-31T23:59:59.999Z' },
  ],
  metrics: [
    { event_id: 'm1', delivery_id: 'd-full', metric: 'clicked', created_at: '2026-03-01T12:00:00.001+05:30', reason: '', link_id: 7, link_url: 'https://example.com/a?b=c&d=é' },
    { event_id: 'm2', delivery_id: 'd-min', metric: 'sent', created_at: iso(NOW) },
  ],
  subjects: [
    { subject_name: 's1', internal_customer_id: 'p1', campaign_type: 'triggered', campaign_id: 1, event_id: 'e1', trigger_id: 9, started_campaign_at: iso(NOW - DAY), created_at: iso(NOW - DAY + 1) },
    { subject_name: 's2', campaign_type: 'broadcast', campaign_id: 2, started_campaign_at: iso(NOW), created_at: iso(NOW) },
  ],
  outputs: [
    { output_id: 'o1', subject_name: 's1', output_type: 'email', action_id: 11, explanation: 'sent', delivery_id: 'd-full', draft: false, link_tracked: true, split_test_index: 0, delay_ends_at: iso(NOW + DAY), branch_index: 2, manual_segment_id: 8, add_to_manual_segment: true, created_at: iso(NOW) },
    { output_id: 'o2', subject_name: 's2', output_type: 'delay', action_id: 12, explanation: '', draft: true, link_tracked: false, add_to_manual_segment: false, created_at: iso(NOW) },
    { output_id: 'o3', subject_name: 's2', output_type: 'exit', action_id: 13, explanation: 'x', created_at: iso(NOW) },
  ],
  content: [
    { delivery_id: 'd-full', campaign_id: 1, action_id: 11, newsletter_id: 3, content_id: 4, from: 'Ünï <news@example.com>', reply_to: 'r@example.com', bcc: 'b@example.com', recipient: 'one@example.com', subject: 'Hi 👋', body: BIG_BODY, body_amp: '<html ⚡4email></html>', body_plain: 'line1\nline2', preheader: 'pre', url: 'https://example.com/hook', method: 'POST', headers: '{"X-A":"1"}', type: 'email' },
    { delivery_id: 'd-min', body: '', type: 'sms' },
  ],
  events: [
    { event_id: 'ev1', internal_customer_id: 'p1', name: 'purchase', type: 'event', data: '{"amount":5.5,"items":["a","b"]}', timestamp: iso(NOW - DAY) },
    { event_id: 'ev2', name: 'home', type: 'page', timestamp: iso(NOW) },
  ],
};
const PEOPLE: Rec[] = [
  { internal_customer_id: 'p1', customer_id: 'c1', email_addr: 'one@example.com', created_at: iso(NOW - 9 * DAY), updated_at: iso(NOW - 2 * DAY), attributes: { plan: 'pro', n: 42, flag: false, ratio: 0.25, emoji: '🚀', empty: '' } },
  { internal_customer_id: 'p2', customer_id: 'c2', created_at: '2020-02-29T00:00:00Z', updated_at: '2020-02-29T00:00:00.5Z' },
];
const DIRECT_ATTRIBUTE = { internal_customer_id: 'p2', attribute_name: 'tz', attribute_value: 'IST', timestamp: '2026-01-01T00:00:00.250+05:30' };

let pipeline: Pipeline;
let dir: string;
const files = new Map<FileType, string>();

beforeAll(async () => {
  pipeline = await startPipeline();
  await pipeline.ingest('people', PEOPLE);
  await pipeline.ingest('attributes', [DIRECT_ATTRIBUTE]);
  for (const [t, records] of Object.entries(INGESTED)) await pipeline.ingest(SCHEMAS[t as FileType].name, records);
  await pipeline.connect('readers');
  await pipeline.sync();
  dir = tempDir('readers-');
  const names = await pipeline.files('readers');
  for (const t of FILE_TYPES) {
    const mine = names.filter((n) => path.posix.basename(n).startsWith(filePrefix(t, pipeline.ws)));
    expect(mine, SCHEMAS[t].name).toHaveLength(1);
    files.set(t, (await pipeline.download(mine, dir))[0]);
  }
});

afterAll(async () => {
  await pipeline?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// --- expected rows, from what was ingested ------------------------------------------------------

const ms = (v: unknown) => (typeof v === 'string' ? Date.parse(v) : v);

/** SPEC columns but seq_num: INTEGER → bigint, TIMESTAMP → epoch ms, absent → null. */
function expectedRow(t: FileType, r: Rec): Rec {
  return Object.fromEntries(
    SCHEMAS[t].columns
      .filter((c) => c.name !== 'seq_num')
      .map((c) => {
        const v = c.name === 'workspace_id' ? pipeline.ws : (r[c.name] ?? null);
        return [c.name, v === null ? null : c.type === 'INTEGER' ? BigInt(v as number) : c.type === 'TIMESTAMP' ? ms(v) : v];
      }),
  );
}

function expectedRows(t: FileType): Rec[] {
  if (t === 'people') return PEOPLE.map(({ attributes: _a, ...p }) => expectedRow(t, { deleted: false, suppressed: false, ...p }));
  if (t === 'attributes') {
    const fromPeople = PEOPLE.flatMap((p) =>
      Object.entries((p.attributes ?? {}) as Rec).map(([name, v]) => ({ internal_customer_id: p.internal_customer_id, attribute_name: name, attribute_value: typeof v === 'string' ? v : JSON.stringify(v), timestamp: p.updated_at })),
    );
    return [...fromPeople, DIRECT_ATTRIBUTE].map((r) => expectedRow(t, r));
  }
  return INGESTED[t].map((r) => expectedRow(t, r));
}

// --- reading ------------------------------------------------------------------------------------

const keyOf = (t: FileType, r: Rec) => SCHEMAS[t].primaryKey.map((k) => String(r[k])).join('|');
const byKey = (t: FileType, rows: Rec[]) => [...rows].sort((a, b) => (keyOf(t, a) < keyOf(t, b) ? -1 : keyOf(t, a) > keyOf(t, b) ? 1 : 0));
const hasSeq = (t: FileType) => SCHEMAS[t].columns.some((c) => c.name === 'seq_num');
const withoutSeq = (rows: Rec[]) => rows.map(({ seq_num: _s, ...r }) => r);

/** One reader's rows in one shape (INT64 → bigint, timestamps → epoch ms), checking it has exactly the SPEC columns in order. */
function normalize(t: FileType, rows: Rec[]): Rec[] {
  const cols = SCHEMAS[t].columns;
  return byKey(
    t,
    rows.map((r) => {
      expect(Object.keys(r), SCHEMAS[t].name).toEqual(cols.map((c) => c.name));
      return Object.fromEntries(
        cols.map((c) => {
          const v = r[c.name];
          if (v === null || v === undefined) return [c.name, null];
          if (c.type === 'INTEGER') return [c.name, BigInt(v as number | bigint)];
          if (c.type === 'TIMESTAMP') return [c.name, v instanceof Date ? v.getTime() : Number(v)];
          return [c.name, v];
        }),
      );
    }),
  );
}

/** A reader's rows against what was ingested (seq_num: assigned by the source, only checked to be positive). */
function expectAsIngested(t: FileType, rows: Rec[]) {
  if (hasSeq(t)) for (const r of rows) expect(typeof r.seq_num === 'bigint' && r.seq_num > 0n, `${SCHEMAS[t].name} seq_num`).toBe(true);
  expect(hasSeq(t) ? withoutSeq(rows) : rows, SCHEMAS[t].name).toEqual(byKey(t, expectedRows(t)));
}

async function readWithDuckDB(t: FileType): Promise<Rec[]> {
  const db = await duckDatabase();
  try {
    return normalize(t, await db.rows(`SELECT * FROM read_parquet('${files.get(t)}')`));
  } finally {
    db.close();
  }
}

const ARROW_TYPES = { INTEGER: 'Int64', STRING: 'Utf8', BOOLEAN: 'Bool', TIMESTAMP: 'Timestamp<MILLISECOND, UTC>' };

describe('independent readers on exported files', () => {
  it('records what the files are made of (page types, encodings, codec) for the readers below', async ({ annotate }) => {
    const seen = { pages: new Set<string>(), encodings: new Set<string>(), codecs: new Set<string>() };
    for (const t of FILE_TYPES) {
      const census = await pageCensus(new Uint8Array(readFileSync(files.get(t)!)));
      expect(census.pages.DATA_PAGE ?? census.pages.DATA_PAGE_V2, SCHEMAS[t].name).toBeGreaterThan(0);
      Object.keys(census.pages).forEach((p) => seen.pages.add(p));
      census.encodings.forEach((e) => seen.encodings.add(e));
      census.codecs.forEach((c) => seen.codecs.add(c));
    }
    for (const p of seen.pages) expect(['DATA_PAGE', 'DATA_PAGE_V2', 'DICTIONARY_PAGE']).toContain(p);
    await annotate(`pages ${[...seen.pages].sort().join(', ')}; encodings ${[...seen.encodings].sort().join(', ')}; codecs ${[...seen.codecs].sort().join(', ')}`);
  });

  it('DuckDB reads every file type back exactly as ingested', async () => {
    for (const t of FILE_TYPES) {
      expectAsIngested(t, await readWithDuckDB(t));
    }
    const [{ body, bytes }] = await (async () => {
      const db = await duckDatabase();
      try {
        return await db.rows(`SELECT body, octet_length(encode(body)) AS bytes FROM read_parquet('${files.get('content')}') WHERE delivery_id = 'd-full'`);
      } finally {
        db.close();
      }
    })();
    expect(body).toBe(BIG_BODY);
    expect(Number(bytes)).toBe(Buffer.byteLength(BIG_BODY));
    expect(Number(bytes)).toBeGreaterThan(400 * 1024);
  });

  it.skipIf(unavailable !== undefined)(`parquet-wasm (arrow-rs) reads every file type back exactly as ingested, and as DuckDB does${unavailable ? ` — skipped: ${unavailable}` : ''}`, async () => {
    const reader = arrow as Exclude<typeof arrow, { unavailable: string }>;
    for (const t of FILE_TYPES) {
      const bytes = new Uint8Array(readFileSync(files.get(t)!));
      // The Arrow schema parquet-wasm derives from the file: SPEC types, nullable = not required.
      expect(reader.schema(bytes), SCHEMAS[t].name).toEqual(SCHEMAS[t].columns.map((c) => ({ name: c.name, type: ARROW_TYPES[c.type], nullable: !c.required })));
      const rows = normalize(t, reader.rows(bytes));
      expectAsIngested(t, rows);
      // Same values, seq_num included, as the other reader.
      expect(rows, `${SCHEMAS[t].name} vs DuckDB`).toEqual(await readWithDuckDB(t));
    }
    const content = reader.rows(new Uint8Array(readFileSync(files.get('content')!)));
    expect(content.find((r) => r.delivery_id === 'd-full')!.body).toBe(BIG_BODY);
  });
});
