// Rows → parquet, streamed: the current row group is kept as typed column arrays, encoded with
// hyparquet-writer's ParquetWriter when full, and the encoded bytes are handed to a BlockSink in
// blocks of ~blockBytes (one staged block of a block blob each). Memory is bounded by one row group
// (its column arrays, then its encoded bytes) plus one block, whatever the number of rows written.
//
// Physical/logical types (SPEC section 2) come from schemas.ts via parquetSchema(); nothing is
// auto-detected.

import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import type { ColumnSource, SchemaElement } from 'hyparquet-writer';
import type { Column } from './schemas.js';

/** Receives the file's bytes in order; each call is one staged block of the blob. */
export interface BlockSink {
  stageBlock(bytes: Uint8Array): Promise<void>;
}

export type ParquetCodec = 'SNAPPY' | 'UNCOMPRESSED';

export interface ParquetFileOptions {
  /** Columns in contract order, from schemas.ts (`columnsFor(fileType, version)`). */
  columns: readonly Column[];
  sink: BlockSink;
  /** Rows buffered before a row group is encoded (default 50_000; a group is also cut by bytes). */
  rowGroupRows?: number;
  /** Approximate uncompressed bytes buffered before a row group is encoded (default 32 MiB). */
  rowGroupBytes?: number;
  /** Encoded bytes accumulated before a block is handed to the sink (default 8 MiB). */
  blockBytes?: number;
  /** Default SNAPPY. */
  codec?: ParquetCodec;
  kvMetadata?: { key: string; value: string }[];
  /** Column chunk statistics (min/max/null count) in the footer. Default true. */
  statistics?: boolean;
}

export type Row = Record<string, unknown>;

export interface ParquetFileResult {
  rows: number;
  /** Size of the whole file in bytes (= sum of the staged blocks). */
  bytes: number;
  rowGroups: number;
  /** Blocks handed to the sink. */
  blocks: number;
}

export const DEFAULT_ROW_GROUP_ROWS = 50_000;
export const DEFAULT_ROW_GROUP_BYTES = 32 * 1024 * 1024;
export const DEFAULT_BLOCK_BYTES = 8 * 1024 * 1024;
/** Azure's limit for one staged block. */
const MAX_BLOCK_BYTES = 4000 * 1024 * 1024;

const CREATED_BY = 'hyparquet-writer (warehouse-export)';

/** The parquet schema (root + one leaf per column, in order) for SPEC section 2 columns. */
export function parquetSchema(columns: readonly Column[]): SchemaElement[] {
  if (columns.length === 0) throw new Error('parquet: a file needs at least one column');
  const seen = new Set<string>();
  const schema: SchemaElement[] = [{ name: 'root', num_children: columns.length }];
  for (const c of columns) {
    if (seen.has(c.name)) throw new Error(`parquet: duplicate column ${c.name}`);
    seen.add(c.name);
    const repetition_type = c.required ? 'REQUIRED' : 'OPTIONAL';
    switch (c.type) {
      case 'INTEGER':
        schema.push({ name: c.name, type: 'INT64', repetition_type });
        break;
      case 'STRING':
        schema.push({
          name: c.name,
          type: 'BYTE_ARRAY',
          repetition_type,
          converted_type: 'UTF8',
          logical_type: { type: 'STRING' },
        });
        break;
      case 'BOOLEAN':
        schema.push({ name: c.name, type: 'BOOLEAN', repetition_type });
        break;
      case 'TIMESTAMP':
        schema.push({
          name: c.name,
          type: 'INT64',
          repetition_type,
          converted_type: 'TIMESTAMP_MILLIS',
          logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MILLIS' },
        });
        break;
      default:
        throw new Error(`parquet: column ${(c as Column).name} has unknown type ${(c as Column).type}`);
    }
  }
  return schema;
}

// ---------------------------------------------------------------------------------------------
// Block writer: a hyparquet-writer Writer that cuts its buffer into blocks for the sink.

class BlockWriter extends ByteWriter {
  private chain: Promise<void> = Promise.resolve();
  blocks = 0;

  constructor(
    private readonly sink: BlockSink,
    private readonly blockBytes: number,
  ) {
    // Room for one block plus the largest single append that typically follows.
    super(Math.min(blockBytes + 64 * 1024, 64 * 1024 * 1024));
  }

  override ensure(size: number): void {
    if (this.index >= this.blockBytes) this.cut();
    super.ensure(size);
  }

  /** Hand the buffered bytes to the sink as one block (called in order, one at a time). */
  private cut(): void {
    if (this.index === 0) return;
    const block = new Uint8Array(this.buffer.slice(0, this.index));
    this.index = 0;
    this.blocks++;
    const sink = this.sink;
    this.chain = this.chain.then(() => sink.stageBlock(block));
    // Mark as handled: the failure reaches the caller through flush()/finish(), which return the chain.
    this.chain.catch(() => {});
  }

  /** After each row group: stage full blocks, wait for the sink. */
  flush(): Promise<void> {
    if (this.index >= this.blockBytes) this.cut();
    return this.chain;
  }

  /** End of file: stage the remainder. */
  override finish(): Promise<void> {
    this.cut();
    return this.chain;
  }
}

// ---------------------------------------------------------------------------------------------
// Column buffers: one per column, holding the current row group's values.

type Bufferable = BigInt64Array | (bigint | null)[] | (string | null)[] | (Uint8Array | null)[] | (boolean | null)[];

interface ColumnBuffer {
  readonly column: Column;
  /** Appends the value of row `n` (0-based within the group), returns approximate bytes. */
  push(value: unknown, rowIndex: number, n: number): number;
  /** The group's values, for ColumnSource.data; then starts a new group. */
  take(n: number): Bufferable;
  /** Drops values pushed after the first `n` of the group (a row that was rejected half-way). */
  truncate(n: number): void;
}

function fail(column: Column, rowIndex: number, what: string): never {
  throw new Error(`parquet: column ${column.name} ${what} in row ${rowIndex}`);
}

function requiredNull(column: Column, rowIndex: number): never {
  throw new Error(`parquet: required column ${column.name} is null in row ${rowIndex}`);
}

type Convert = (column: Column, value: unknown, rowIndex: number) => number | bigint;

/** INTEGER: a safe-integer number or an INT64-range bigint (returned as given). */
function checkInt64(column: Column, value: unknown, rowIndex: number): number | bigint {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) fail(column, rowIndex, `expects a safe integer, got ${value}`);
    return value;
  }
  if (typeof value === 'bigint') {
    if (BigInt.asIntN(64, value) !== value) fail(column, rowIndex, `value ${value} is out of INT64 range`);
    return value;
  }
  return fail(column, rowIndex, `expects an integer (number or bigint), got ${typeof value}`);
}

/** TIMESTAMP: epoch milliseconds as a safe-integer number (also a Date or an INT64 bigint). */
function checkMillis(column: Column, value: unknown, rowIndex: number): number | bigint {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) fail(column, rowIndex, `expects epoch milliseconds (an integer), got ${value}`);
    return value;
  }
  if (value instanceof Date) {
    const ms = value.getTime();
    if (Number.isNaN(ms)) fail(column, rowIndex, 'got an invalid Date');
    return ms;
  }
  if (typeof value === 'bigint') {
    if (BigInt.asIntN(64, value) !== value) fail(column, rowIndex, `value ${value} is out of INT64 range`);
    return value;
  }
  return fail(column, rowIndex, `expects epoch milliseconds (number), got ${typeof value}`);
}

/** Required INT64: raw 64-bit slots, no object per value while the group is buffered. */
class RequiredInt64Buffer implements ColumnBuffer {
  private values: BigInt64Array;
  constructor(
    readonly column: Column,
    private capacity: number,
    private readonly convert: Convert,
  ) {
    this.values = new BigInt64Array(capacity);
  }
  push(value: unknown, rowIndex: number, n: number): number {
    if (value === null || value === undefined) requiredNull(this.column, rowIndex);
    const v = this.convert(this.column, value, rowIndex);
    if (n >= this.capacity) this.grow();
    this.values[n] = typeof v === 'bigint' ? v : BigInt(v);
    return 8;
  }
  private grow(): void {
    this.capacity *= 2;
    const next = new BigInt64Array(this.capacity);
    next.set(this.values);
    this.values = next;
  }
  take(n: number): BigInt64Array {
    const out = this.values.subarray(0, n);
    this.values = new BigInt64Array(this.capacity);
    return out;
  }
  truncate(): void {
    // slots past the group's row count are simply overwritten
  }
}

/**
 * Optional INT64: numbers (small ones are unboxed) and nulls while buffered; converted to bigints
 * only at encode time, so the BigInts are short-lived instead of surviving the whole group.
 */
class OptionalInt64Buffer implements ColumnBuffer {
  private values: (number | bigint | null)[] = [];
  constructor(
    readonly column: Column,
    private readonly convert: Convert,
  ) {}
  push(value: unknown, rowIndex: number): number {
    if (value === null || value === undefined) {
      this.values.push(null);
      return 0;
    }
    this.values.push(this.convert(this.column, value, rowIndex));
    return 8;
  }
  take(): (bigint | null)[] {
    const values = this.values;
    this.values = [];
    const out = new Array<bigint | null>(values.length);
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      out[i] = v === null ? null : typeof v === 'bigint' ? v : BigInt(v);
    }
    return out;
  }
  truncate(n: number): void {
    this.values.length = n;
  }
}

/**
 * Strings are buffered as JS strings. At encode time a column that looks high-cardinality is
 * handed over as UTF-8 bytes (Buffer.from is ~10x faster than the TextEncoder hyparquet-writer uses
 * per value); a low-cardinality one stays strings so the dictionary is built on string keys and
 * only distinct values get encoded.
 */
class StringBuffer implements ColumnBuffer {
  private values: (string | null)[] = [];
  constructor(readonly column: Column) {}
  push(value: unknown, rowIndex: number): number {
    if (value === null || value === undefined) {
      if (this.column.required) requiredNull(this.column, rowIndex);
      this.values.push(null);
      return 0;
    }
    if (typeof value !== 'string') fail(this.column, rowIndex, `expects a string, got ${typeof value}`);
    this.values.push(value);
    return value.length + 4;
  }
  take(): (string | null)[] | (Uint8Array | null)[] {
    const out = this.values;
    this.values = [];
    return looksLowCardinality(out) ? out : toUtf8(out);
  }
  truncate(n: number): void {
    this.values.length = n;
  }
}

const SAMPLE = 512;

/** Whether at most half of a sample spread over the values is distinct (dictionary candidate). */
function looksLowCardinality(values: (string | null)[]): boolean {
  const n = values.length;
  const step = n <= SAMPLE ? 1 : n / SAMPLE;
  const seen = new Set<string>();
  let count = 0;
  for (let f = 0; f < n; f += step) {
    const v = values[Math.floor(f)];
    if (v === null) continue;
    count++;
    seen.add(v);
  }
  return count > 0 && seen.size * 2 <= count;
}

function toUtf8(values: (string | null)[]): (Uint8Array | null)[] {
  const out = new Array<Uint8Array | null>(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    out[i] = v === null ? null : Buffer.from(v, 'utf8');
  }
  return out;
}

class BooleanBuffer implements ColumnBuffer {
  private values: (boolean | null)[] = [];
  constructor(readonly column: Column) {}
  push(value: unknown, rowIndex: number): number {
    if (value === null || value === undefined) {
      if (this.column.required) requiredNull(this.column, rowIndex);
      this.values.push(null);
      return 0;
    }
    if (typeof value !== 'boolean') fail(this.column, rowIndex, `expects a boolean, got ${typeof value}`);
    this.values.push(value);
    return 1;
  }
  take(): (boolean | null)[] {
    const out = this.values;
    this.values = [];
    return out;
  }
  truncate(n: number): void {
    this.values.length = n;
  }
}

function columnBuffer(column: Column, capacity: number): ColumnBuffer {
  switch (column.type) {
    case 'INTEGER':
      return column.required
        ? new RequiredInt64Buffer(column, capacity, checkInt64)
        : new OptionalInt64Buffer(column, checkInt64);
    case 'TIMESTAMP':
      return column.required
        ? new RequiredInt64Buffer(column, capacity, checkMillis)
        : new OptionalInt64Buffer(column, checkMillis);
    case 'STRING':
      return new StringBuffer(column);
    case 'BOOLEAN':
      return new BooleanBuffer(column);
  }
}

// ---------------------------------------------------------------------------------------------

function positiveInt(name: string, value: number | undefined, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new Error(`parquet: ${name} must be an integer between 1 and ${max}, got ${value}`);
  }
  return value;
}

/**
 * Writes one parquet file row by row into a BlockSink.
 *
 * `write()` returns a Promise when it encoded a row group (await it: that is the back-pressure from
 * the sink), otherwise nothing. `finish()` encodes the last group and the footer and stages the
 * remaining bytes. A row with an invalid value (e.g. null in a required column) throws
 * synchronously and is not written; the writer stays usable. A sink failure is final: every later
 * call throws, and the blob's staged blocks must be abandoned (never committed).
 *
 * Memory: the buffered group's column arrays (≤ rowGroupRows rows / ~rowGroupBytes), and while a
 * group is encoded its encoded bytes, cut into blocks that wait for the sink one at a time; the
 * next group is not encoded before the sink took the previous blocks (if write() is awaited).
 */
export class ParquetFileWriter {
  private readonly buffers: ColumnBuffer[];
  private readonly names: string[];
  private readonly schema: SchemaElement[];
  private readonly out: BlockWriter;
  private readonly pw: ParquetWriter;
  private readonly rowGroupRows: number;
  private readonly rowGroupBytes: number;
  private readonly codec: ParquetCodec;

  private groupRows = 0;
  private groupBytes = 0;
  private totalRows = 0;
  private rowGroups = 0;
  private pending: Promise<void> | undefined;
  private state: 'open' | 'finished' | 'failed' = 'open';
  private failure: unknown;

  constructor(opts: ParquetFileOptions) {
    this.schema = parquetSchema(opts.columns);
    this.rowGroupRows = positiveInt('rowGroupRows', opts.rowGroupRows, DEFAULT_ROW_GROUP_ROWS);
    this.rowGroupBytes = positiveInt('rowGroupBytes', opts.rowGroupBytes, DEFAULT_ROW_GROUP_BYTES);
    const blockBytes = positiveInt('blockBytes', opts.blockBytes, DEFAULT_BLOCK_BYTES, MAX_BLOCK_BYTES / 2);
    this.codec = opts.codec ?? 'SNAPPY';
    if (this.codec !== 'SNAPPY' && this.codec !== 'UNCOMPRESSED') {
      throw new Error(`parquet: unsupported codec ${String(this.codec)}`);
    }
    const capacity = Math.min(this.rowGroupRows, 65_536);
    this.buffers = opts.columns.map((c) => columnBuffer(c, capacity));
    this.names = opts.columns.map((c) => c.name);
    this.out = new BlockWriter(opts.sink, blockBytes);
    this.pw = new ParquetWriter({
      writer: this.out,
      schema: this.schema,
      codec: this.codec,
      statistics: opts.statistics ?? true,
      kvMetadata: opts.kvMetadata,
      createdBy: CREATED_BY,
    });
  }

  /** Rows written so far (including the buffered group). */
  get rows(): number {
    return this.totalRows;
  }

  /** Encoded bytes so far plus the approximate uncompressed size of the buffered group. */
  get approxBytes(): number {
    return this.out.offset + this.groupBytes;
  }

  write(row: Row): Promise<void> | void {
    if (this.state !== 'open') this.throwState('write');
    const n = this.groupRows;
    const rowIndex = this.totalRows;
    const buffers = this.buffers;
    const names = this.names;
    let bytes = 0;
    let i = 0;
    try {
      for (; i < buffers.length; i++) {
        bytes += buffers[i].push(row[names[i]], rowIndex, n);
      }
    } catch (err) {
      // Rejected row: undo the columns that already took a value; the writer stays usable.
      for (let j = 0; j < i; j++) buffers[j].truncate(n);
      throw err;
    }
    this.groupRows = n + 1;
    this.groupBytes += bytes;
    this.totalRows = rowIndex + 1;
    if (this.groupRows >= this.rowGroupRows || this.groupBytes >= this.rowGroupBytes) {
      return this.flushGroup();
    }
  }

  /** Encodes the buffered rows as one row group; resolves once the sink took the full blocks. */
  private flushGroup(): Promise<void> {
    const n = this.groupRows;
    const columnData: ColumnSource[] = this.buffers.map((b, i) => ({ name: this.names[i], data: b.take(n) }));
    this.groupRows = 0;
    this.groupBytes = 0;
    this.rowGroups++;
    const encode = (): Promise<void> => {
      try {
        return this.pw.write({ columnData, rowGroupSize: n }) ?? Promise.resolve();
      } catch (err) {
        return Promise.reject(err);
      }
    };
    // A group filled while the previous one was still being staged waits for it.
    const p = (this.pending ? this.pending.then(encode) : encode()).then(
      () => {
        if (this.pending === p) this.pending = undefined;
      },
      (err: unknown) => {
        this.fail(err);
        throw err;
      },
    );
    // A caller that does not await write() learns of a sink failure from the next write()/finish().
    p.catch(() => {});
    this.pending = p;
    return p;
  }

  private fail(err: unknown): void {
    this.state = 'failed';
    this.failure ??= err;
  }

  private throwState(op: string): never {
    if (this.state === 'failed') {
      const cause = this.failure instanceof Error ? this.failure.message : String(this.failure);
      throw new Error(`parquet: ${op}() on a failed writer (${cause})`, { cause: this.failure });
    }
    throw new Error(`parquet: ${op}() on a ${this.state} writer`);
  }

  async finish(): Promise<ParquetFileResult> {
    if (this.state !== 'open') this.throwState('finish');
    if (this.totalRows === 0) {
      const err = new Error('parquet: refusing to write an empty file (0 rows)');
      this.fail(err);
      throw err;
    }
    try {
      if (this.groupRows > 0) await this.flushGroup();
      else if (this.pending) await this.pending;
      await this.pw.finish();
    } catch (err) {
      this.fail(err);
      throw err;
    }
    this.state = 'finished';
    return { rows: this.totalRows, bytes: this.out.offset, rowGroups: this.rowGroups, blocks: this.out.blocks };
  }
}
