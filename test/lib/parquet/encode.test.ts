// The column-chunk encoder behind ParquetFileWriter (parquet-encode.ts, parquet-pages.ts,
// parquet-snappy.ts, parquet-worker.ts): snappy, page kinds and boundaries, PLAIN and dictionary
// paths, definition levels, INT64 edges, statistics, codecs and the compression worker. Every file
// is read back by DuckDB and by hyparquet.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { MemorySink, parquetScratch } from '../../support/parquet-scratch.js';
import { parquetMetadata, parquetReadObjects, snappyUncompress } from 'hyparquet';
import { parquetHeader } from 'hyparquet/src/column.js';
import { ParquetFileWriter, codecAvailable, type BlockSink, type ParquetFileOptions, type Row } from '../../../src/lib/parquet/writer.js';
import { snappyCompress, snappyCompressInto, snappyMaxLength } from '../../../src/lib/parquet/snappy.js';
import { columnsFor, type Column } from '../../../src/lib/contract/schemas.js';

const scratch = parquetScratch('parquet-encoder-test-');

async function encode(columns: readonly Column[], rows: Row[], opts: Partial<Omit<ParquetFileOptions, 'columns' | 'sink'>> = {}) {
  const sink = new MemorySink();
  const writer = new ParquetFileWriter({ columns, sink, ...opts });
  for (const row of rows) await writer.write(row);
  const result = await writer.finish();
  const bytes = sink.bytes();
  const path = scratch.path();
  writeFileSync(path, bytes);
  return { path, bytes, result, sink };
}

async function query(sql: string): Promise<Record<string, unknown>[]> {
  return (await scratch.db.runAndReadAll(sql)).getRowObjects() as Record<string, unknown>[];
}

const q = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** What we wrote, as DuckDB and hyparquet (normalized) give it back. */
function expectedValue(c: Column, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (c.type === 'INTEGER' || c.type === 'TIMESTAMP') return BigInt(v instanceof Date ? v.getTime() : (v as number | bigint));
  return v;
}

// arrow-rs (parquet-wasm) + apache-arrow: a third, independent and strict reader
interface ArrowTable {
  toArray(): { toJSON(): Record<string, unknown> }[];
}
const parquetWasm = (await import('parquet-wasm')) as unknown as { readParquet(b: Uint8Array): { intoIPCStream(): Uint8Array } };
const apacheArrow = (await import('apache-arrow')) as unknown as { tableFromIPC(b: Uint8Array): ArrowTable };

/** Checks the file against the rows with DuckDB, hyparquet and arrow-rs (file order). */
async function expectRoundTrip(path: string, bytes: Uint8Array, columns: readonly Column[], rows: Row[]): Promise<void> {
  const expected = rows.map((r) => columns.map((c) => expectedValue(c, r[c.name])));
  const select = columns.map((c) => (c.type === 'TIMESTAMP' ? `epoch_ms(${q(c.name)})` : q(c.name))).join(', ');
  const duck = (await scratch.db.runAndReadAll(`SELECT ${select} FROM read_parquet('${path}')`)).getRows();
  expect(duck.length).toBe(rows.length);
  for (let i = 0; i < rows.length; i++) {
    if (JSON.stringify(duck[i], bigintJson) !== JSON.stringify(expected[i], bigintJson)) {
      expect(duck[i], `DuckDB row ${i}`).toEqual(expected[i]);
    }
  }
  const hy = await parquetReadObjects({ file: new Uint8Array(bytes).buffer, compressors });
  expect(hy.length).toBe(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const got = columns.map((c) => {
      const v = hy[i][c.name];
      if (v === null || v === undefined) return null;
      if (c.type === 'TIMESTAMP') return BigInt((v as Date).getTime());
      if (c.type === 'INTEGER') return BigInt(v as bigint);
      return v;
    });
    if (JSON.stringify(got, bigintJson) !== JSON.stringify(expected[i], bigintJson)) {
      expect(got, `hyparquet row ${i}`).toEqual(expected[i]);
    }
  }
  const arrow = apacheArrow.tableFromIPC(parquetWasm.readParquet(bytes).intoIPCStream()).toArray();
  expect(arrow.length).toBe(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const r = arrow[i].toJSON();
    const got = columns.map((c) => {
      const v = r[c.name];
      if (v === null || v === undefined) return null;
      if (c.type === 'INTEGER' || c.type === 'TIMESTAMP') return BigInt(v instanceof Date ? v.getTime() : (v as number | bigint));
      return v;
    });
    if (JSON.stringify(got, bigintJson) !== JSON.stringify(expected[i], bigintJson)) {
      expect(got, `arrow-rs row ${i}`).toEqual(expected[i]);
    }
  }
}

/** hyparquet has SNAPPY built in; node:zlib for the others. */
const zstd = (zlib as unknown as { zstdDecompressSync?: (b: Uint8Array) => Buffer }).zstdDecompressSync;
const compressors = {
  GZIP: (input: Uint8Array) => new Uint8Array(zlib.gunzipSync(input)),
  ...(zstd ? { ZSTD: (input: Uint8Array) => new Uint8Array(zstd(input)) } : {}),
};

function bigintJson(_key: string, v: unknown): unknown {
  return typeof v === 'bigint' ? `${v}n` : v;
}

interface PageInfo {
  column: string;
  type: string;
  encoding: string | undefined;
  numValues: number;
}

/** Every page header of every column chunk, read with hyparquet's page header parser. */
function pagesOf(bytes: Uint8Array): PageInfo[] {
  const ab = new Uint8Array(bytes).buffer;
  const meta = parquetMetadata(ab);
  const view = new DataView(ab);
  const pages: PageInfo[] = [];
  for (const rg of meta.row_groups) {
    for (const chunk of rg.columns) {
      const md = chunk.meta_data!;
      const start = Number(md.dictionary_page_offset ?? md.data_page_offset);
      const end = start + Number(md.total_compressed_size);
      const reader = { view, offset: start };
      let values = 0;
      while (reader.offset < end) {
        const h = parquetHeader(reader);
        reader.offset += h.compressed_page_size;
        const encoding = h.data_page_header?.encoding ?? h.dictionary_page_header?.encoding;
        const numValues = h.data_page_header?.num_values ?? h.dictionary_page_header?.num_values ?? 0;
        if (h.type === 'DATA_PAGE') values += numValues;
        pages.push({ column: md.path_in_schema.join('.'), type: h.type, encoding, numValues });
      }
      expect(reader.offset).toBe(end);
      expect(BigInt(values)).toBe(md.num_values);
    }
  }
  return pages;
}

/** Deterministic pseudo-random numbers in [0, 1). */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 4294967296;
  };
}

const col = (name: string, type: Column['type'], required = false): Column => ({ name, type, required });

describe('snappy', () => {
  const inputs: [string, Uint8Array][] = (() => {
    const rnd = prng(7);
    const random = new Uint8Array(200_000).map(() => Math.floor(rnd() * 256));
    const text = new TextEncoder().encode('the quick brown fox jumps over the lazy dog; '.repeat(3000));
    const periodic = new Uint8Array(300_000).map((_, i) => (i % 3001) % 251); // copies with offsets >= 2048
    const mixed = new Uint8Array(150_000).map((_, i) => (i % 5000 < 2500 ? Math.floor(rnd() * 256) : i % 7));
    return [
      ['empty', new Uint8Array(0)],
      ['one byte', new Uint8Array([42])],
      ['16 bytes', new Uint8Array(16).fill(9)],
      ['17 bytes', new Uint8Array(17).map((_, i) => i)],
      ['zeros (long copies)', new Uint8Array(300_000)],
      ['text', text],
      ['random (literals)', random],
      ['periodic', periodic],
      ['mixed', mixed],
      ['exactly one fragment', random.slice(0, 65_536)],
      ['one fragment + 1', text.slice(0, 65_537)],
    ];
  })();

  it.each(inputs)('%s: round-trips through hyparquet\'s decoder', (_name, input) => {
    const compressed = snappyCompress(input);
    expect(compressed.length).toBeLessThanOrEqual(snappyMaxLength(input.length));
    const back = new Uint8Array(input.length);
    snappyUncompress(compressed, back);
    expect(Buffer.from(back).equals(Buffer.from(input))).toBe(true);
  });

  it('compresses repetitive data and a sub-range of a larger buffer', () => {
    expect(snappyCompress(new Uint8Array(300_000)).length).toBeLessThan(20_000);
    const whole = new TextEncoder().encode('x'.repeat(100) + 'abcdefgh'.repeat(10_000) + 'y'.repeat(100));
    const view = whole.subarray(50); // a view with a byte offset
    const out = new Uint8Array(snappyMaxLength(view.length) + 10);
    const end = snappyCompressInto(view, 20, 80_020, out, 10);
    const back = new Uint8Array(80_000);
    snappyUncompress(out.subarray(10, end), back);
    expect(Buffer.from(back).equals(Buffer.from(view.subarray(20, 80_020)))).toBe(true);
  });
});

describe('pages: DATA_PAGE v1, PLAIN and dictionary, page boundaries', () => {
  const columns = [
    col('id', 'STRING', true), // unique: PLAIN
    col('kind', 'STRING', true), // 5 values: dictionary
    col('label', 'STRING'), // few values and nulls: dictionary with definition levels
    col('note', 'STRING'), // unique with nulls: PLAIN with definition levels
    col('n', 'INTEGER'),
    col('flag', 'BOOLEAN'),
    col('at', 'TIMESTAMP', true),
  ];
  const kinds = ['email', 'push', 'in-app', 'sms', 'webhook'];
  const rows: Row[] = Array.from({ length: 5000 }, (_, i) => ({
    id: `id-${i}-${'z'.repeat(i % 37)}`,
    kind: kinds[i % 5],
    label: i % 7 === 0 ? null : `label-${i % 3}`,
    note: i % 3 === 0 ? undefined : `note ${i} ü€😀`,
    n: i % 4 === 0 ? null : i * 1000 - 2_000_000,
    flag: i % 5 === 0 ? null : i % 2 === 0,
    at: Date.UTC(2025, 0, 1) + i * 1001,
  }));

  it('small pages: many v1 data pages per chunk, dictionary pages for repetitive strings, exact values', async () => {
    const { path, bytes } = await encode(columns, rows, { pageBytes: 128, rowGroupRows: 2000 });
    const pages = pagesOf(bytes);
    expect(new Set(pages.map((p) => p.type))).toEqual(new Set(['DATA_PAGE', 'DICTIONARY_PAGE']));
    const by = (name: string) => pages.filter((p) => p.column === name);
    for (const c of columns) expect(by(c.name).filter((p) => p.type === 'DATA_PAGE').length, c.name).toBeGreaterThan(3);
    expect(new Set(by('id').map((p) => p.encoding))).toEqual(new Set(['PLAIN']));
    expect(new Set(by('note').map((p) => p.encoding))).toEqual(new Set(['PLAIN']));
    for (const name of ['kind', 'label']) {
      expect(by(name).filter((p) => p.type === 'DICTIONARY_PAGE').length, name).toBe(3); // one per row group
      expect(new Set(by(name).filter((p) => p.type === 'DATA_PAGE').map((p) => p.encoding))).toEqual(new Set(['PLAIN_DICTIONARY']));
    }
    const meta = await query(
      `SELECT path_in_schema AS c, encodings AS e FROM parquet_metadata('${path}') WHERE row_group_id = 0 ORDER BY column_id`,
    );
    expect(meta.map((m) => [m.c, m.e])).toEqual([
      ['id', 'PLAIN'],
      ['kind', 'PLAIN_DICTIONARY'],
      ['label', 'PLAIN_DICTIONARY, RLE'],
      ['note', 'PLAIN, RLE'],
      ['n', 'PLAIN, RLE'],
      ['flag', 'PLAIN, RLE'],
      ['at', 'PLAIN'],
    ]);
    await expectRoundTrip(path, bytes, columns, rows);
  });

  it('default pages: one data page per chunk at this size; the same values', async () => {
    const { path, bytes } = await encode(columns, rows);
    const pages = pagesOf(bytes);
    expect(pages.filter((p) => p.type === 'DATA_PAGE').length).toBe(columns.length);
    await expectRoundTrip(path, bytes, columns, rows);
  });

  it('a page per value when values are bigger than the page size', async () => {
    const big = (i: number) => `${i}:` + 'ä'.repeat(3000 + i);
    const cols = [col('k', 'INTEGER', true), col('s', 'STRING')];
    const many = Array.from({ length: 40 }, (_, i) => ({ k: i, s: i % 4 === 1 ? null : big(i) }));
    const { path, bytes } = await encode(cols, many, { pageBytes: 1000 });
    expect(pagesOf(bytes).filter((p) => p.column === 's' && p.type === 'DATA_PAGE').length).toBe(30);
    await expectRoundTrip(path, bytes, cols, many);
  });
});

describe('definition levels (RLE / bit-packed hybrid)', () => {
  const patterns: [string, (i: number) => boolean][] = [
    ['never null', () => false],
    ['always null', () => true],
    ['alternating', (i) => i % 2 === 0],
    ['runs of 7', (i) => Math.floor(i / 7) % 2 === 0],
    ['runs of 8', (i) => Math.floor(i / 8) % 2 === 0],
    ['runs of 9', (i) => Math.floor(i / 9) % 2 === 0],
    ['runs of growing length', (i) => Math.floor(Math.sqrt(i)) % 2 === 0],
    ['one null in 20', (i) => i % 20 === 0],
    ['random 30%', (() => {
      const rnd = prng(3);
      const nulls = Array.from({ length: 3000 }, () => rnd() < 0.3);
      return (i: number) => nulls[i];
    })()],
    ['long run then noise', (i) => (i < 1500 ? true : i % 3 === 0)],
  ];
  const columns = [col('s', 'STRING'), col('d', 'STRING'), col('n', 'INTEGER'), col('b', 'BOOLEAN'), col('t', 'TIMESTAMP')];

  it.each(patterns)('%s', async (_name, isNull) => {
    const rows: Row[] = Array.from({ length: 3000 }, (_, i) =>
      isNull(i)
        ? { s: null, d: null, n: null, b: null, t: null }
        : { s: `v${i}`, d: `d${i % 4}`, n: i - 1500, b: i % 3 === 0, t: i * 86_400_000 - 1 },
    );
    for (const pageBytes of [undefined, 512]) {
      const { path, bytes } = await encode(columns, rows, { pageBytes, rowGroupRows: 1100 });
      await expectRoundTrip(path, bytes, columns, rows);
    }
  });
});

describe('rejected rows', () => {
  it('leave no trace: the file is byte for byte the one written without them (dictionary, PLAIN, the switch)', async () => {
    const columns = [col('d', 'STRING'), col('p', 'STRING', true), col('m', 'STRING'), col('n', 'INTEGER'), col('last', 'INTEGER', true)];
    // d: few values (dictionary); p: unique (PLAIN after the switch at the 1024th value); m: unique
    // from row 1500 on (dictionary, then PLAIN mid-group)
    const good: Row[] = Array.from({ length: 3000 }, (_, i) => ({
      d: i % 9 === 0 ? null : `d${i % 4}`,
      p: `p${i}`,
      m: i < 1500 ? `m${i % 3}` : i % 5 === 0 ? null : `m${i}`,
      n: i % 2 ? i : null,
      last: i,
    }));
    const bad = (i: number): Row => ({ d: `new-d-${i}`, p: `zzzz-new-${i}`, m: `new-m-${i}`, n: -5, last: 'not a number' });
    const rejectAt = new Set([0, 1, 500, 1022, 1023, 1024, 1025, 1499, 1500, 1501, 2047, 2048, 2999]);
    const sink = new MemorySink();
    const writer = new ParquetFileWriter({ columns, sink, rowGroupRows: 2048 });
    for (let i = 0; i < good.length; i++) {
      if (rejectAt.has(i)) expect(() => writer.write(bad(i))).toThrow(/column last expects an integer/);
      await writer.write(good[i]);
    }
    await writer.finish();
    const clean = await encode(columns, good, { rowGroupRows: 2048 });
    expect(sink.bytes().equals(clean.bytes)).toBe(true);
    await expectRoundTrip(clean.path, clean.bytes, columns, good);
  });
});

describe('INT64 and TIMESTAMP values', () => {
  it('round-trip exactly at the edges (numbers, bigints, Dates)', async () => {
    const values: (number | bigint)[] = [
      0, -0, 1, -1, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), -(2 ** 31) - 1, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, -(2 ** 32),
      -(2 ** 32) - 1, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 53n + 1n,
      -(2n ** 53n) - 1n, 123n,
    ];
    const columns = [col('v', 'INTEGER', true), col('o', 'INTEGER'), col('t', 'TIMESTAMP', true)];
    const rows: Row[] = values.map((v, i) => ({
      v,
      o: i % 3 === 0 ? null : v,
      // timestamps: Dates, numbers and bigints, before and after 1970 (within DuckDB's range)
      t: i % 3 === 0 ? new Date(Date.UTC(1969, 11, 31, 23, 59, 59, 999) + i) : i % 3 === 1 ? -(2 ** 40) + i : BigInt(2 ** 42 + i),
    }));
    const { path, bytes } = await encode(columns, rows);
    await expectRoundTrip(path, bytes, columns, rows);
  });
});

/** UTF-8 byte order (parquet's order for strings); lone surrogates are written as U+FFFD. */
const utf8Order = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

describe('statistics', () => {
  async function stats(path: string) {
    const rows = await query(
      `SELECT row_group_id AS g, path_in_schema AS c, stats_min_value AS min, stats_max_value AS max, stats_null_count AS nulls
       FROM parquet_metadata('${path}') ORDER BY row_group_id, column_id`,
    );
    return rows.map((r) => ({ g: Number(r.g), c: r.c, min: r.min, max: r.max, nulls: Number(r.nulls) }));
  }

  it('min, max and null count per column chunk, strings in UTF-8 byte order', async () => {
    const columns = [
      col('i', 'INTEGER'),
      col('t', 'TIMESTAMP'),
      col('b', 'BOOLEAN'),
      col('ascii', 'STRING'),
      col('uni', 'STRING'),
      col('dict', 'STRING'),
      col('pair', 'STRING'),
      col('none', 'STRING'),
    ];
    // UTF-16 order says '😀' (U+D83D U+DE00) < '\uE000'; UTF-8 (parquet) order says the opposite
    const uni = ['\uE000', '😀', 'zz', 'é', '\uFFFF', '😀a'];
    const rows: Row[] = Array.from({ length: 12 }, (_, i) => ({
      i: i === 3 ? -(2n ** 40n) : i === 7 ? 2 ** 40 : i % 5 === 0 ? null : i,
      t: i % 4 === 0 ? null : Date.UTC(2024, 0, 1) + i,
      b: i % 3 === 0 ? null : true,
      ascii: i % 6 === 0 ? null : `s${(i * 7) % 12}`,
      uni: uni[i % uni.length],
      dict: ['b', 'a', 'c'][i % 3],
      pair: i % 2 ? '\uE000' : '😀',
      none: null,
    }));
    const { path } = await encode(columns, rows, { rowGroupRows: 6 });
    const got = await stats(path);
    const expected = (g: number) => {
      const part = rows.slice(g * 6, g * 6 + 6);
      return columns.map((c) => {
        const vs = part.map((r) => r[c.name]).filter((v) => v !== null && v !== undefined);
        let min: unknown = null;
        let max: unknown = null;
        if (vs.length) {
          if (c.type === 'STRING') {
            const sorted = (vs as string[]).slice().sort(utf8Order);
            [min, max] = [sorted[0], sorted.at(-1)];
          } else if (c.type === 'BOOLEAN') {
            [min, max] = [String(vs.every(Boolean)), String(vs.some(Boolean))];
          } else {
            const ns = vs.map((v) => BigInt(v as number));
            const lo = ns.reduce((a, b) => (b < a ? b : a));
            const hi = ns.reduce((a, b) => (b > a ? b : a));
            [min, max] = c.type === 'TIMESTAMP' ? [lo, hi] : [String(lo), String(hi)];
          }
        }
        return { g, c: c.name, min, max, nulls: part.length - vs.length };
      });
    };
    const normalize = (s: { g: number; c: unknown; min: unknown; max: unknown; nulls: number }) => {
      if (s.c !== 't' || s.min === null) return s;
      // DuckDB shows TIMESTAMP bounds as timestamps
      const ms = (v: unknown) => BigInt(Date.parse(`${String(v).replace(' ', 'T').replace(/\+00$/, '')}Z`));
      return { ...s, min: ms(s.min), max: ms(s.max) };
    };
    expect(got.map(normalize)).toEqual([...expected(0), ...expected(1)]);
    // U+E000 sorts before the emoji in UTF-8 (parquet) order, after it in UTF-16 (JS) order
    expect(got.find((s) => s.g === 0 && s.c === 'pair')).toMatchObject({ min: '\uE000', max: '😀' });
    expect(got.find((s) => s.g === 0 && s.c === 'uni')).toMatchObject({ min: 'zz', max: '😀a' });
  });

  it('long strings: bounds truncated to 16 bytes, flagged inexact; statistics can be turned off', async () => {
    const columns = [col('s', 'STRING', true)];
    const rows = [{ s: 'a'.repeat(100) }, { s: 'b'.repeat(500 * 1024) }];
    const { path } = await encode(columns, rows);
    const [s] = await query(
      `SELECT stats_min_value AS min, stats_max_value AS max, min_is_exact, max_is_exact FROM parquet_metadata('${path}')`,
    );
    expect(s).toEqual({ min: 'a'.repeat(16), max: 'b'.repeat(15) + 'c', min_is_exact: false, max_is_exact: false });
    const off = await encode(columns, rows, { statistics: false });
    const [n] = await query(`SELECT stats_min_value AS min, stats_null_count AS nulls FROM parquet_metadata('${off.path}')`);
    expect(n).toEqual({ min: null, nulls: null });
  });
});

describe('codecs', () => {
  const columns = columnsFor('deliveries', 'v4');
  const rows = deliveries(3000);

  it.each(['UNCOMPRESSED', 'GZIP', 'SNAPPY'] as const)('%s', async (codec) => {
    const { path, bytes } = await encode(columns, rows, { codec });
    const codecs = await query(`SELECT DISTINCT compression FROM parquet_metadata('${path}')`);
    expect(codecs).toEqual([{ compression: codec }]);
    await expectRoundTrip(path, bytes, columns, rows);
  });

  it('ZSTD where node:zlib has it, a clear error elsewhere', async () => {
    if (codecAvailable('ZSTD')) {
      const { path, bytes } = await encode(columns, rows, { codec: 'ZSTD' });
      expect(await query(`SELECT DISTINCT compression FROM parquet_metadata('${path}')`)).toEqual([{ compression: 'ZSTD' }]);
      await expectRoundTrip(path, bytes, columns, rows);
    } else {
      expect(() => new ParquetFileWriter({ columns, sink: new MemorySink(), codec: 'ZSTD' })).toThrow(
        /^parquet: codec ZSTD is not available on Node\.js v/,
      );
    }
  });
});

/** Deliveries rows like the benchmark's (70% campaign rows, nulls in every optional column). */
function deliveries(n: number, from = 0): Row[] {
  const types = ['email', 'push', 'in-app', 'sms', 'slack', 'webhook'];
  return Array.from({ length: n }, (_, k) => {
    const i = from + k;
    const campaign = i % 10 < 7 ? 1 + (i % 200) : null;
    return {
      workspace_id: 42,
      delivery_id: `dlv_${(i * 2654435761) % 4294967296}_${i}`,
      internal_customer_id: i % 20 === 0 ? null : `cio_${((i * 7919) % 250000).toString(16).padStart(8, '0')}`,
      subject_id: campaign === null ? null : `sub_${Math.floor(i / 3)}`,
      event_id: i % 4 === 0 ? `evt_${i}` : null,
      delivery_type: types[i % 6],
      campaign_id: campaign,
      action_id: campaign === null ? null : 1000 + (i % 1500),
      newsletter_id: campaign === null && i % 3 === 0 ? 500 + (i % 40) : null,
      content_id: campaign === null && i % 3 === 0 ? i % 4 : null,
      trigger_id: campaign === null && i % 3 === 1 ? 9000 + (i % 30) : null,
      created_at: Date.UTC(2025, 0, 1) + i * 37,
      transactional_message_id: campaign === null && i % 3 === 2 ? 7 + (i % 12) : null,
      seq_num: i + 1,
    };
  });
}

describe('compression worker', () => {
  const columns = columnsFor('deliveries', 'v4');
  const rows = deliveries(40_000);

  it('frames big row groups in the worker: the same bytes as on the main thread, streamed before finish()', async () => {
    const here = await encode(columns, rows, { rowGroupRows: 10_000, compressInWorker: false });
    const sink = new MemorySink();
    const writer = new ParquetFileWriter({ columns, sink, rowGroupRows: 10_000, blockBytes: 256 * 1024 });
    for (const row of rows) await writer.write(row);
    expect(sink.blocks.length).toBeGreaterThan(1); // groups reached the sink before finish()
    const result = await writer.finish();
    expect(result).toMatchObject({ rows: 40_000, rowGroups: 4, bytes: here.bytes.length });
    expect(sink.bytes().equals(here.bytes)).toBe(true);
    await expectRoundTrip(here.path, here.bytes, columns, rows);
  });

  it('serves concurrent writers, and writers that do not await write()', async () => {
    const other = deliveries(25_000, 1_000_000);
    const expectedA = await encode(columns, rows, { rowGroupRows: 8_000, compressInWorker: false });
    const expectedB = await encode(columns, other, { rowGroupRows: 6_000, compressInWorker: false });
    const a = new MemorySink();
    const b = new MemorySink();
    const wa = new ParquetFileWriter({ columns, sink: a, rowGroupRows: 8_000 });
    const wb = new ParquetFileWriter({ columns, sink: b, rowGroupRows: 6_000 });
    const pending: Promise<void>[] = [];
    for (let i = 0; i < rows.length; i++) {
      const pa = wa.write(rows[i]);
      if (pa) pending.push(pa);
      if (i < other.length) await wb.write(other[i]);
    }
    await wa.finish();
    await wb.finish();
    await Promise.all(pending);
    expect(a.bytes().equals(expectedA.bytes)).toBe(true);
    expect(b.bytes().equals(expectedB.bytes)).toBe(true);
  });

  it('500 KiB bodies in big row groups round-trip byte for byte', async () => {
    const cols = columnsFor('content', 'v4');
    const rnd = prng(11);
    const alphabet = Array.from('<p class="x">Grüße – 😀 &amp; 中文 \r\n</p>abcdefghijklmnopqrstuvwxyz0123456789');
    const body = (n: number) => Array.from({ length: n }, () => alphabet[Math.floor(rnd() * alphabet.length)]).join('');
    const bodies = Array.from({ length: 6 }, (_, i) => body(500 * 1024 + i));
    const many: Row[] = bodies.map((b, i) => ({ workspace_id: 7, delivery_id: `d${i}`, body: b, body_plain: i % 2 ? null : b.slice(0, 999) }));
    const { path, bytes } = await encode(cols, many, { rowGroupRows: 3, blockBytes: 1 << 20 });
    const back = await query(`SELECT delivery_id, md5(body) AS md5 FROM read_parquet('${path}') ORDER BY delivery_id`);
    expect(back.map((r) => r.md5)).toEqual(bodies.map((b) => createHash('md5').update(b, 'utf8').digest('hex')));
    await expectRoundTrip(path, bytes, cols, many);
  });

  it('an idle worker does not keep the process alive: a process that wrote a file ends by itself', () => {
    // Started ahead of its first use (a small file never needs it), then idle. In a child process:
    // the test runner's own process is kept alive by other things.
    const writer = new URL('../../../src/lib/parquet/writer.ts', import.meta.url).href;
    const schemas = new URL('../../../src/lib/contract/schemas.ts', import.meta.url).href;
    const script = `
      const { ParquetFileWriter } = await import(${JSON.stringify(writer)});
      const { columnsFor } = await import(${JSON.stringify(schemas)});
      const w = new ParquetFileWriter({ columns: columnsFor('deliveries', 'v4'), sink: { stageBlock: async () => {} } });
      w.write({ workspace_id: 1, delivery_id: 'd', delivery_type: 'email', created_at: 1, seq_num: 1 });
      await w.finish();
      console.log('written');`;
    const tsx = new URL('../../../node_modules/tsx/dist/esm/index.mjs', import.meta.url).href;
    // A module file: run with -e, the child ended even while the worker's port kept it referenced.
    const file = join(mkdtempSync(join(tmpdir(), 'parquet-exit-')), 'write.mjs');
    writeFileSync(file, script);
    const run = spawnSync(process.execPath, ['--import', tsx, file], { encoding: 'utf8', timeout: 15_000 });
    expect(run.stdout.trim()).toBe('written');
    expect({ status: run.status, signal: run.signal, error: run.error?.message }).toEqual({ status: 0, signal: null, error: undefined });
  });

  it('reports a failing sink', async () => {
    const sink: BlockSink = {
      async stageBlock() {
        throw new Error('409 BlobAlreadyExists');
      },
    };
    const writer = new ParquetFileWriter({ columns, sink, rowGroupRows: 10_000, blockBytes: 64 * 1024 });
    const attempt = async () => {
      for (const row of rows) await writer.write(row);
      await writer.finish();
    };
    await expect(attempt()).rejects.toThrow('409 BlobAlreadyExists');
    expect(() => writer.write(rows[0])).toThrow(/failed writer \(409 BlobAlreadyExists\)/);
  });
});
