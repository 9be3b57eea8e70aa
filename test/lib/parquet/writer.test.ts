import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MemorySink, parquetScratch } from '../../support/parquet-scratch.js';
import { parquetReadObjects } from 'hyparquet';
import {
  ParquetFileWriter,
  parquetSchema,
  type BlockSink,
  type ParquetFileOptions,
  type ParquetFileResult,
  type Row,
} from '../../../src/lib/parquet/writer.js';
import { FILE_TYPES, V1_FILE_TYPES, columnsFor, type Column, type FileType, type SchemaVersion } from '../../../src/lib/contract/schemas.js';
import type { Utf8Values } from '../../../src/lib/parquet/columns.js';

const scratch = parquetScratch('parquet-test-');

interface Written {
  path: string;
  sink: MemorySink;
  result: ParquetFileResult;
}

async function writeRows(
  columns: readonly Column[],
  rows: Row[],
  opts: Partial<Omit<ParquetFileOptions, 'columns' | 'sink'>> = {},
): Promise<Written> {
  const sink = new MemorySink();
  const writer = new ParquetFileWriter({ columns, sink, ...opts });
  for (const row of rows) await writer.write(row);
  const result = await writer.finish();
  const path = scratch.path();
  writeFileSync(path, sink.bytes());
  return { path, sink, result };
}

async function query(sql: string): Promise<Record<string, unknown>[]> {
  const reader = await scratch.db.runAndReadAll(sql);
  return reader.getRowObjects() as Record<string, unknown>[];
}

const q = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** All rows of a file, timestamps as epoch ms (bigint), in file order. */
async function readBack(path: string, columns: readonly Column[]): Promise<Record<string, unknown>[]> {
  const select = columns
    .map((c) => (c.type === 'TIMESTAMP' ? `epoch_ms(${q(c.name)}) AS ${q(c.name)}` : q(c.name)))
    .join(', ');
  return query(`SELECT ${select} FROM read_parquet('${path}')`);
}

/** What DuckDB gives back for a value we wrote. */
function expected(column: Column, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (column.type === 'INTEGER' || column.type === 'TIMESTAMP') return BigInt(value as number | bigint);
  return value;
}

const BASE_MS = Date.UTC(2024, 1, 29, 23, 59, 58, 987); // a leap day, with milliseconds

/**
 * Deterministic sample rows for a column list: every optional column is null in every third row,
 * and the last optional column is null in every row (a column must be present even when all null).
 */
function sampleRows(columns: readonly Column[], count: number): Row[] {
  const optional = columns.filter((c) => !c.required);
  const allNull = optional.at(-1)?.name;
  const rows: Row[] = [];
  for (let i = 0; i < count; i++) {
    const row: Row = {};
    columns.forEach((c, j) => {
      if (!c.required && (i % 3 === 1 || c.name === allNull)) {
        if (i % 2 === 0) row[c.name] = null; // else: omitted (undefined) = null too
        return;
      }
      switch (c.type) {
        case 'INTEGER':
          // numbers and bigints, negative and beyond 2^53
          row[c.name] = i === 4 ? -(2n ** 63n) : i === 5 ? 2n ** 63n - 1n : i % 2 ? BigInt(i * 1000 + j) : -(i * 1000 + j);
          break;
        case 'STRING':
          row[c.name] = i === 0 ? '' : `${c.name}-${i}-ü€😀"'\\\n`;
          break;
        case 'BOOLEAN':
          row[c.name] = (i + j) % 2 === 0;
          break;
        case 'TIMESTAMP':
          row[c.name] = i === 6 ? 0 : i === 7 ? -1 : BASE_MS + i * 1001 + j;
          break;
      }
    });
    rows.push(row);
  }
  return rows;
}

const DUCKDB_TYPE = { INTEGER: 'BIGINT', STRING: 'VARCHAR', BOOLEAN: 'BOOLEAN', TIMESTAMP: 'TIMESTAMP WITH TIME ZONE' };
const PHYSICAL = { INTEGER: 'INT64', STRING: 'BYTE_ARRAY', BOOLEAN: 'BOOLEAN', TIMESTAMP: 'INT64' };
const CONVERTED = { INTEGER: null, STRING: 'UTF8', BOOLEAN: null, TIMESTAMP: 'TIMESTAMP_MILLIS' };

const cases: [FileType, SchemaVersion][] = [
  ...FILE_TYPES.map((t): [FileType, SchemaVersion] => [t, 'v4']),
  ...V1_FILE_TYPES.map((t): [FileType, SchemaVersion] => [t, 'v1']),
];

describe('ParquetFileWriter: every file type', () => {
  it.each(cases)('%s %s: columns, types and values round-trip (DuckDB and hyparquet)', async (fileType, version) => {
    const columns = columnsFor(fileType, version);
    const rows = sampleRows(columns, 12);
    const { path, sink, result } = await writeRows(columns, rows);
    expect(result).toEqual({ rows: 12, bytes: sink.bytes().length, rowGroups: 1, blocks: 1 });

    // names, order and DuckDB types
    const described = await query(`DESCRIBE SELECT * FROM read_parquet('${path}')`);
    expect(described.map((d) => [d.column_name, d.column_type])).toEqual(
      columns.map((c) => [c.name, DUCKDB_TYPE[c.type]]),
    );

    // parquet physical / logical types and repetition
    const schema = await query(
      `SELECT name, type, converted_type, logical_type, repetition_type FROM parquet_schema('${path}')`,
    );
    expect(schema[0]).toMatchObject({ name: 'root', type: null });
    const leaves = schema.slice(1);
    expect(leaves.map((s) => s.name)).toEqual(columns.map((c) => c.name));
    columns.forEach((c, i) => {
      const s = leaves[i];
      expect(s.type, c.name).toBe(PHYSICAL[c.type]);
      expect(s.converted_type, c.name).toBe(CONVERTED[c.type]);
      expect(s.repetition_type, c.name).toBe(c.required ? 'REQUIRED' : 'OPTIONAL');
      if (c.type === 'STRING') expect(s.logical_type).toBe('StringType()');
      if (c.type === 'TIMESTAMP') {
        expect(s.logical_type).toMatch(/^TimestampType\(isAdjustedToUTC=1, unit=TimeUnit\(MILLIS=MilliSeconds\(\)/);
      }
      if (c.type === 'INTEGER' || c.type === 'BOOLEAN') expect(s.logical_type).toBeNull();
    });

    // values, nulls included, timestamps to the millisecond
    const back = await readBack(path, columns);
    expect(back).toEqual(rows.map((r) => Object.fromEntries(columns.map((c) => [c.name, expected(c, r[c.name])]))));

    // an independent reader agrees
    const bytes = sink.bytes();
    const ab = new Uint8Array(bytes).buffer; // an ArrayBuffer of exactly the file
    const hy = await parquetReadObjects({ file: ab });
    expect(Object.keys(hy[0])).toEqual(columns.map((c) => c.name));
    expect(hy.map((r) => Object.fromEntries(columns.map((c) => [c.name, normalizeHyparquet(c, r[c.name])])))).toEqual(
      rows.map((r) => Object.fromEntries(columns.map((c) => [c.name, expected(c, r[c.name])]))),
    );
  });
});

function normalizeHyparquet(column: Column, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (column.type === 'TIMESTAMP') return BigInt((value as Date).getTime());
  if (column.type === 'INTEGER') return BigInt(value as bigint | number);
  return value;
}

describe('ParquetFileWriter: streaming', () => {
  const columns = columnsFor('deliveries', 'v4');

  it('cuts row groups by rows and hands several blocks to the sink, in order, before finish()', async () => {
    const sink = new MemorySink();
    const writer = new ParquetFileWriter({ columns, sink, rowGroupRows: 100, blockBytes: 4096 });
    const rows = sampleRows(columns, 1050);
    for (const row of rows.slice(0, 1000)) await writer.write(row);
    expect(writer.rows).toBe(1000);
    const blocksBeforeFinish = sink.blocks.length;
    expect(blocksBeforeFinish).toBeGreaterThan(1); // streamed, not held until the end
    for (const row of rows.slice(1000)) await writer.write(row);
    const result = await writer.finish();
    expect(result.rows).toBe(1050);
    expect(result.rowGroups).toBe(11);
    expect(sink.blocks.length).toBeGreaterThan(blocksBeforeFinish);
    // every block but the last is at least blockBytes; together they are the file
    for (const b of sink.blocks.slice(0, -1)) expect(b.length).toBeGreaterThanOrEqual(4096);
    expect(sink.blocks.reduce((n, b) => n + b.length, 0)).toBe(result.bytes);
    expect(result.blocks).toBe(sink.blocks.length);

    const path = scratch.path();
    writeFileSync(path, sink.bytes());
    const groups = await query(
      `SELECT row_group_id, any_value(row_group_num_rows) AS n FROM parquet_metadata('${path}') GROUP BY 1 ORDER BY 1`,
    );
    expect(groups.map((g) => Number(g.n))).toEqual([...Array(10).fill(100), 50]);
    const back = await readBack(path, columns);
    expect(back.length).toBe(1050);
    expect(back[1049]).toEqual(Object.fromEntries(columns.map((c) => [c.name, expected(c, rows[1049][c.name])])));
  });

  it('cuts row groups by approximate bytes', async () => {
    const big = 'x'.repeat(100_000);
    const { path, result } = await writeRows(
      columnsFor('content', 'v4'),
      Array.from({ length: 10 }, (_, i) => ({ workspace_id: 1, delivery_id: `d${i}`, body: big })),
      { rowGroupBytes: 250_000 },
    );
    expect(result.rowGroups).toBe(4); // 3 + 3 + 3 + 1
    const groups = await query(`SELECT DISTINCT row_group_id FROM parquet_metadata('${path}')`);
    expect(groups.length).toBe(4);
  });

  it('waits for a slow sink and never calls it concurrently', async () => {
    let active = 0;
    let maxActive = 0;
    const blocks: Uint8Array[] = [];
    const sink: BlockSink = {
      async stageBlock(bytes) {
        active++;
        maxActive = Math.max(maxActive, active);
        await new Promise((r) => setTimeout(r, 2));
        blocks.push(bytes);
        active--;
      },
    };
    const writer = new ParquetFileWriter({ columns, sink, rowGroupRows: 50, blockBytes: 1024 });
    for (const row of sampleRows(columns, 300)) await writer.write(row);
    const result = await writer.finish();
    expect(maxActive).toBe(1);
    expect(blocks.length).toBeGreaterThan(3);
    expect(Buffer.concat(blocks).length).toBe(result.bytes);
    expect(Buffer.concat(blocks).subarray(0, 4).toString()).toBe('PAR1');
    expect(Buffer.concat(blocks).subarray(-4).toString()).toBe('PAR1');
  });

  it('reports a failing sink from write()/finish()', async () => {
    const sink: BlockSink = {
      async stageBlock() {
        throw new Error('403 AuthorizationPermissionMismatch');
      },
    };
    const writer = new ParquetFileWriter({ columns, sink, rowGroupRows: 10, blockBytes: 64 });
    const attempt = async () => {
      for (const row of sampleRows(columns, 100)) await writer.write(row);
      await writer.finish();
    };
    await expect(attempt()).rejects.toThrow('403 AuthorizationPermissionMismatch');
    expect(() => writer.write(sampleRows(columns, 1)[0])).toThrow(
      /^parquet: write\(\) on a failed writer \(403 AuthorizationPermissionMismatch\)$/,
    );
    await expect(writer.finish()).rejects.toThrow(/failed writer/);
  });

  it('reports a sink failure even when write() is not awaited', async () => {
    const sink: BlockSink = {
      stageBlock: () => new Promise((_, reject) => setTimeout(() => reject(new Error('boom')), 1)),
    };
    const writer = new ParquetFileWriter({ columns, sink, rowGroupRows: 10, blockBytes: 64 });
    for (const row of sampleRows(columns, 10)) void writer.write(row); // fire and forget
    await new Promise((r) => setTimeout(r, 20)); // no unhandled rejection meanwhile
    expect(() => writer.write(sampleRows(columns, 1)[0])).toThrow(/failed writer \(boom\)/);
  });

  it('tracks rows and approxBytes as rows are written', async () => {
    const writer = new ParquetFileWriter({ columns, sink: new MemorySink(), rowGroupRows: 10 });
    expect(writer.rows).toBe(0);
    expect(writer.approxBytes).toBe(4); // "PAR1"
    let last = writer.approxBytes;
    for (const [i, row] of sampleRows(columns, 25).entries()) {
      await writer.write(row);
      // grows with every buffered row; drops a little when a group is encoded (compression)
      if ((i + 1) % 10 !== 0) expect(writer.approxBytes).toBeGreaterThan(last);
      last = writer.approxBytes;
    }
    expect(writer.rows).toBe(25);
    const { bytes } = await writer.finish();
    expect(bytes).toBeGreaterThan(last / 2);
  });
});

describe('ParquetFileWriter: writeColumns', () => {
  /** The rows by column, as the log producer hands them over (a column of nulls may be absent). */
  const byColumn = (columns: readonly Column[], rows: Row[]) =>
    Object.fromEntries(columns.filter((c) => rows.some((r) => r[c.name] !== null && r[c.name] !== undefined)).map((c) => [c.name, rows.map((r) => r[c.name] ?? null)]));

  it('writes the same file content as write() of each row, across calls and row groups', async () => {
    const columns = columnsFor('deliveries', 'v4');
    const rows = sampleRows(columns, 2500);
    const one = await writeRows(columns, rows, { rowGroupRows: 1000 });
    const sink = new MemorySink();
    const writer = new ParquetFileWriter({ columns, sink, rowGroupRows: 1000 });
    for (const [from, to] of [[0, 7], [7, 1700], [1700, 2500]]) await writer.writeColumns(byColumn(columns, rows.slice(from, to)), to - from);
    const result = await writer.finish();
    expect(result.rows).toBe(2500);
    expect(result.rowGroups).toBe(3);
    const path = scratch.path();
    writeFileSync(path, sink.bytes());
    expect(await readBack(path, columns)).toEqual(await readBack(one.path, columns));
  });

  it('keeps row groups near the byte limit when rows are big (a few rows at a time)', async () => {
    const columns = columnsFor('content', 'v4');
    const rows = Array.from({ length: 10 }, (_, i) => ({ workspace_id: 1, delivery_id: `d${i}`, body: String(i).repeat(100_000) }));
    const sink = new MemorySink();
    const writer = new ParquetFileWriter({ columns, sink, rowGroupBytes: 250_000 });
    await writer.writeColumns(byColumn(columns, rows.slice(0, 1)), 1);
    await writer.writeColumns(byColumn(columns, rows.slice(1)), 9);
    const result = await writer.finish();
    expect(result.rowGroups).toBe(4); // 3 + 3 + 3 + 1, as write() of each row cuts them
    const path = scratch.path();
    writeFileSync(path, sink.bytes());
    expect((await query(`SELECT delivery_id, length(body) AS n FROM read_parquet('${path}')`)).map((r) => [r.delivery_id, Number(r.n)])).toEqual(rows.map((r) => [r.delivery_id, 100_000]));
  });

  /** A string column as UTF-8 bytes (Utf8Values), as the export hands source segments' columns over. */
  const utf8 = (values: readonly unknown[]): Utf8Values => {
    const parts = values.map((v) => (typeof v === 'string' ? Buffer.from(v) : null));
    const offsets = new Int32Array(values.length + 1);
    for (let i = 0; i < parts.length; i++) offsets[i + 1] = offsets[i] + (parts[i]?.length ?? 0);
    const bytes = Buffer.concat(parts.filter((p) => p !== null));
    const nulls = Uint8Array.from(parts, (p) => (p === null ? 1 : 0));
    return { utf8: true, length: values.length, bytes, offsets, nulls, value: (i) => (parts[i] === null ? null : bytes.toString('utf8', offsets[i], offsets[i + 1])) };
  };

  it('string columns given as UTF-8 bytes make the same file as strings: dictionary, PLAIN, nulls, non-ASCII', async () => {
    const columns = columnsFor('deliveries', 'v4');
    const rows = sampleRows(columns, 2500).map((r, i) => ({ ...r, subject_id: i % 7 === 0 ? null : `é中😀 ${i % 3}`, delivery_type: ['email', 'push'][i % 2] }));
    const strings = await writeRows(columns, rows, { rowGroupRows: 1000, pageBytes: 4096 });
    const sink = new MemorySink();
    const writer = new ParquetFileWriter({ columns, sink, rowGroupRows: 1000, pageBytes: 4096 });
    for (const [from, to] of [[0, 7], [7, 1700], [1700, 2500]]) {
      const part = byColumn(columns, rows.slice(from, to));
      const given = Object.fromEntries(Object.entries(part).map(([name, values]) => [name, columns.find((c) => c.name === name)!.type === 'STRING' ? utf8(values) : values]));
      await writer.writeColumns(given, to - from);
    }
    await writer.finish();
    // byte for byte: the same pages, dictionaries and statistics
    expect(Buffer.compare(Buffer.from(sink.bytes()), Buffer.from(strings.sink.bytes()))).toBe(0);
    const path = scratch.path();
    writeFileSync(path, sink.bytes());
    expect(await readBack(path, columns)).toEqual(await readBack(strings.path, columns));
  });

  it('a string column given partly as UTF-8 bytes, partly as strings, makes the same file: statistics in byte order, a dictionary over its limit PLAIN', async () => {
    const columns = columnsFor('deliveries', 'v4');
    // subject_id: few distinct values, some long (a dictionary over dictionaryBytes in some groups),
    // and characters whose UTF-16 order is not their UTF-8 order (U+E000 < U+1F600 in bytes only).
    const subjects = ['\uE000', '😀', 'a'.repeat(300), 'b'.repeat(70), 'é', null];
    const rows = sampleRows(columns, 3000).map((r, i) => ({ ...r, subject_id: subjects[i % subjects.length] === 'a'.repeat(300) && i > 2000 ? `${'a'.repeat(300)}${i}` : subjects[i % subjects.length] }));
    const options = { rowGroupRows: 1000, pageBytes: 2048, dictionaryBytes: 20_000 };
    const strings = await writeRows(columns, rows, options);
    const sink = new MemorySink();
    const writer = new ParquetFileWriter({ columns, sink, ...options });
    // Chunks as bytes, then as strings (into the same group), then bytes again.
    for (const [from, to, asBytes] of [[0, 600, true], [600, 1400, false], [1400, 3000, true]] as const) {
      const part = byColumn(columns, rows.slice(from, to));
      const given = Object.fromEntries(Object.entries(part).map(([name, values]) => [name, asBytes && columns.find((c) => c.name === name)!.type === 'STRING' ? utf8(values) : values]));
      await writer.writeColumns(given, to - from);
    }
    await writer.finish();
    expect(Buffer.compare(Buffer.from(sink.bytes()), Buffer.from(strings.sink.bytes()))).toBe(0);
    const path = scratch.path();
    writeFileSync(path, sink.bytes());
    const stats = await query(`SELECT row_group_id, stats_min_value AS lo, stats_max_value AS hi FROM parquet_metadata('${path}') WHERE path_in_schema = 'subject_id' ORDER BY row_group_id`);
    // (the footer keeps 16 characters of a long minimum: a lower bound still)
    expect(stats.map((s) => [s.lo, s.hi])).toEqual([['a'.repeat(16), '😀'], ['a'.repeat(16), '😀'], ['a'.repeat(16), '😀']]);
  });

  it('numbers given as a Float64Array (NaN: null, as source segments store them) make the same file as arrays', async () => {
    const columns = columnsFor('deliveries', 'v4');
    const n = 3000;
    const ids = Array.from({ length: n }, (_, i) => `d${i}`);
    const campaign = Array.from({ length: n }, (_, i) => (i % 3 ? i * 7 : null));
    const created = Array.from({ length: n }, (_, i) => 1_767_225_600_000 + i * 1000 - (i % 2) * 2 ** 41);
    const write = async (given: Record<string, ArrayLike<unknown>>) => {
      const sink = new MemorySink();
      const writer = new ParquetFileWriter({ columns, sink, rowGroupRows: 1000 });
      await writer.writeColumns(given, n);
      await writer.finish();
      return Buffer.from(sink.bytes());
    };
    const types = ids.map(() => 'email');
    const seqs = ids.map((_, i) => i + 1);
    const arrays = await write({ workspace_id: new Array(n).fill(4), delivery_id: ids, delivery_type: types, campaign_id: campaign, created_at: created, seq_num: seqs });
    const typed = await write({ workspace_id: new Float64Array(n).fill(4), delivery_id: ids, delivery_type: types, campaign_id: Float64Array.from(campaign, (v) => v ?? NaN), created_at: Float64Array.from(created), seq_num: Float64Array.from(seqs) });
    expect(typed.equals(arrays)).toBe(true);
    const fractional = new ParquetFileWriter({ columns, sink: new MemorySink() });
    await expect(fractional.writeColumns({ workspace_id: Float64Array.of(1.5), delivery_id: ['d'] }, 1)).rejects.toThrow(/workspace_id expects a safe integer, got 1.5/);
    const required = new ParquetFileWriter({ columns, sink: new MemorySink() });
    await expect(required.writeColumns({ workspace_id: Float64Array.of(NaN), delivery_id: ['d'] }, 1)).rejects.toThrow(/workspace_id/);
  });

  it('UTF-8 bytes for a column that is not a string, or a null where one is required, fail the writer', async () => {
    const columns = columnsFor('deliveries', 'v4');
    const number = new ParquetFileWriter({ columns, sink: new MemorySink() });
    await expect(number.writeColumns({ workspace_id: utf8(['1']), delivery_id: utf8(['d']) }, 1)).rejects.toThrow(/workspace_id expects an integer/);
    const required = new ParquetFileWriter({ columns, sink: new MemorySink() });
    await expect(required.writeColumns({ workspace_id: [1, 2], delivery_id: utf8(['d', null]) }, 2)).rejects.toThrow(/delivery_id/);
  });

  it('a value a column cannot hold fails the writer', async () => {
    const columns = columnsFor('deliveries', 'v4');
    const writer = new ParquetFileWriter({ columns, sink: new MemorySink() });
    await expect(writer.writeColumns({ workspace_id: [1], delivery_id: [null] }, 1)).rejects.toThrow(/delivery_id/);
    expect(() => writer.write(sampleRows(columns, 1)[0])).toThrow(/failed writer/);
  });
});

describe('ParquetFileWriter: values', () => {
  it('round-trips a 500 KiB HTML body byte for byte', async () => {
    const columns = columnsFor('content', 'v4');
    // incompressible enough that the body alone spans several blocks
    const alphabet = '<p class="x">Grüße – 😀 &amp; 中文 \u0000 \r\n</p>abcdefghijklmnopqrstuvwxyz0123456789';
    const chars = Array.from(alphabet);
    let seed = 42;
    let body = '';
    while (body.length < 500 * 1024) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      body += chars[seed % chars.length];
    }
    const rows: Row[] = [
      { workspace_id: 7, delivery_id: 'big', body, body_plain: body.slice(0, 1000) },
      { workspace_id: 7, delivery_id: 'small', body: 'hi' },
    ];
    const { path, sink } = await writeRows(columns, rows, { blockBytes: 64 * 1024 });
    expect(sink.blocks.length).toBeGreaterThan(1);
    const back = await query(
      `SELECT delivery_id, body, md5(body) AS md5, octet_length(encode(body)) AS len FROM read_parquet('${path}')`,
    );
    const { createHash } = await import('node:crypto');
    expect(back[0].body === body).toBe(true);
    expect(back[0].md5).toBe(createHash('md5').update(body, 'utf8').digest('hex'));
    expect(Number(back[0].len)).toBe(Buffer.byteLength(body, 'utf8'));
    expect(back[1]).toMatchObject({ delivery_id: 'small', body: 'hi' });
  });

  it('accepts Date and bigint timestamps', async () => {
    const columns = columnsFor('attributes', 'v4');
    const { path } = await writeRows(columns, [
      { workspace_id: 1, internal_customer_id: 'a', attribute_name: 'n', timestamp: new Date(BASE_MS) },
      { workspace_id: 1, internal_customer_id: 'b', attribute_name: 'n', timestamp: BigInt(BASE_MS + 1) },
    ]);
    const back = await query(`SELECT epoch_ms(timestamp) AS t, strftime(timestamp AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%g') AS iso FROM read_parquet('${path}')`);
    expect(back).toEqual([
      { t: BigInt(BASE_MS), iso: '2024-02-29T23:59:58.987' },
      { t: BigInt(BASE_MS + 1), iso: '2024-02-29T23:59:58.988' },
    ]);
  });

  it('rejects a null in a required column with the column and row, and stays usable', async () => {
    const columns = columnsFor('deliveries', 'v4');
    const sink = new MemorySink();
    const writer = new ParquetFileWriter({ columns, sink });
    const rows = sampleRows(columns, 3);
    await writer.write(rows[0]);
    await writer.write(rows[1]);
    expect(() => writer.write({ ...rows[2], delivery_type: null })).toThrow(
      /^parquet: required column delivery_type is null in row 2$/,
    );
    expect(writer.rows).toBe(2);
    // the rejected row left nothing behind in the columns before delivery_type
    await writer.write(rows[2]);
    await writer.finish();
    const path = scratch.path();
    writeFileSync(path, sink.bytes());
    expect(await readBack(path, columns)).toEqual(
      rows.map((r) => Object.fromEntries(columns.map((c) => [c.name, expected(c, r[c.name])]))),
    );

    const w2 = new ParquetFileWriter({ columns, sink: new MemorySink() });
    const { seq_num: _omitted, ...missing } = rows[0];
    expect(() => w2.write(missing)).toThrow(/^parquet: required column seq_num is null in row 0$/);
  });

  it('rejects values of the wrong type', () => {
    const columns = columnsFor('outputs', 'v4');
    const base = sampleRows(columns, 1)[0];
    const bad: [string, unknown, RegExp][] = [
      ['action_id', 1.5, /column action_id expects a safe integer/],
      ['action_id', 2 ** 53, /column action_id expects a safe integer/],
      ['action_id', '12', /column action_id expects an integer/],
      ['seq_num', 2n ** 63n, /out of INT64 range/],
      ['created_at', '2024-01-01T00:00:00Z', /column created_at expects epoch milliseconds/],
      ['created_at', new Date('nope'), /invalid Date/],
      ['output_id', 12, /column output_id expects a string/],
      ['draft', 'true', /column draft expects a boolean/],
    ];
    for (const [name, value, message] of bad) {
      const writer = new ParquetFileWriter({ columns, sink: new MemorySink() });
      expect(() => writer.write({ ...base, [name]: value }), name).toThrow(message);
    }
  });

  it('refuses to write an empty file', async () => {
    const writer = new ParquetFileWriter({ columns: columnsFor('events', 'v4'), sink: new MemorySink() });
    await expect(writer.finish()).rejects.toThrow(/empty file/);
  });

  it('writes key/value metadata', async () => {
    const { path } = await writeRows(columnsFor('people', 'v1'), sampleRows(columnsFor('people', 'v1'), 2), {
      kvMetadata: [{ key: 'schema_version', value: 'v1' }],
    });
    const kv = await query(`SELECT decode(key) AS k, decode(value) AS v FROM parquet_kv_metadata('${path}')`);
    expect(kv).toEqual([{ k: 'schema_version', v: 'v1' }]);
  });

  it('writes UNCOMPRESSED when asked', async () => {
    const columns = columnsFor('metrics', 'v4');
    const { path } = await writeRows(columns, sampleRows(columns, 5), { codec: 'UNCOMPRESSED' });
    const codecs = await query(`SELECT DISTINCT compression FROM parquet_metadata('${path}')`);
    expect(codecs).toEqual([{ compression: 'UNCOMPRESSED' }]);
    const snappy = await writeRows(columns, sampleRows(columns, 5));
    expect(await query(`SELECT DISTINCT compression FROM parquet_metadata('${snappy.path}')`)).toEqual([
      { compression: 'SNAPPY' },
    ]);
  });
});

describe('parquetSchema', () => {
  it('maps SPEC types explicitly', () => {
    expect(
      parquetSchema([
        { name: 'a', type: 'INTEGER', required: true },
        { name: 'b', type: 'STRING', required: false },
        { name: 'c', type: 'BOOLEAN', required: false },
        { name: 'd', type: 'TIMESTAMP', required: true },
      ]),
    ).toEqual([
      { name: 'root', num_children: 4 },
      { name: 'a', type: 'INT64', repetition_type: 'REQUIRED' },
      { name: 'b', type: 'BYTE_ARRAY', repetition_type: 'OPTIONAL', converted_type: 'UTF8', logical_type: { type: 'STRING' } },
      { name: 'c', type: 'BOOLEAN', repetition_type: 'OPTIONAL' },
      {
        name: 'd',
        type: 'INT64',
        repetition_type: 'REQUIRED',
        converted_type: 'TIMESTAMP_MILLIS',
        logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MILLIS' },
      },
    ]);
  });
});
