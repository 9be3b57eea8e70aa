// Column buffers and column-chunk encoding for ParquetFileWriter (writer.ts).
//
// A row group is buffered per column in typed storage (INT64 as little-endian lo/hi Int32 pairs,
// booleans as bytes, strings as JS strings), non-null values densely plus one definition level
// byte per row for OPTIONAL columns. Encoding writes parquet DATA_PAGE (v1) pages straight from
// that storage, the most widely readable page format:
//   INT64 / TIMESTAMP  PLAIN (the buffered words are already the PLAIN bytes)
//   BOOLEAN            PLAIN (bit-packed)
//   STRING             PLAIN_DICTIONARY (dictionary page + RLE/bit-packed indexes) when the
//                      column chunk has few distinct values, else PLAIN
// Definition levels are RLE/bit-packed hybrid (bit width 1). The pages of a row group are staged
// uncompressed (Staging); pages.ts then frames them (header + body compressed per the codec,
// SNAPPY by default), on the main thread or in the compression worker, and stagedChunkMeta() makes
// the column chunk metadata once the framed sizes are known. Column chunk statistics (min/max/null
// count) are computed on the typed storage.

import * as zlib from 'node:zlib';
import { PAGE_FIELDS } from './pages.js';
import type { Column, Utf8Values } from './columns.js';

export type ParquetCodec = 'SNAPPY' | 'UNCOMPRESSED' | 'GZIP' | 'ZSTD';

/** The ColumnChunk shape hyparquet-writer's writeMetadata serializes (subset we use). */
export interface ChunkMeta {
  file_offset: bigint;
  meta_data: {
    type: 'INT64' | 'BYTE_ARRAY' | 'BOOLEAN';
    encodings: Encoding[];
    path_in_schema: string[];
    codec: ParquetCodec;
    num_values: bigint;
    total_uncompressed_size: bigint;
    total_compressed_size: bigint;
    data_page_offset: bigint;
    dictionary_page_offset?: bigint;
    statistics?: { null_count: bigint; min_value?: bigint | string | boolean; max_value?: bigint | string | boolean };
    encoding_stats?: { page_type: 'DATA_PAGE' | 'DICTIONARY_PAGE'; encoding: Encoding; count: number }[];
  };
}

type Encoding = 'PLAIN' | 'PLAIN_DICTIONARY' | 'RLE';

export interface EncodeOptions {
  codec: ParquetCodec;
  statistics: boolean;
  /** Target uncompressed size of a data page. */
  pageBytes: number;
  /** Largest dictionary (sum of value lengths) before a string column chunk falls back to PLAIN. */
  dictionaryBytes: number;
}

const ENCODING = { PLAIN: 0, PLAIN_DICTIONARY: 2, RLE: 3 } as const;
const PAGE_TYPE = { DATA_PAGE: 0, DICTIONARY_PAGE: 2 } as const;

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  // INT64 values are buffered as native Int32 pairs and copied as the little-endian PLAIN bytes.
  throw new Error('parquet: a little-endian platform is required');
}

const zstdCompressSync = (zlib as unknown as { zstdCompressSync?: (b: Uint8Array) => Buffer }).zstdCompressSync;

/** Page body compression for the codecs other than SNAPPY and UNCOMPRESSED (node:zlib). */
export function bodyCompressor(codec: ParquetCodec): ((body: Uint8Array) => Uint8Array) | null {
  if (codec === 'GZIP') return (body) => zlib.gzipSync(body);
  if (codec === 'ZSTD' && zstdCompressSync) return (body) => zstdCompressSync(body);
  return null;
}

/** Whether a codec can be used on this Node.js (ZSTD needs node:zlib's zstd, Node >= 22.15). */
export function codecAvailable(codec: ParquetCodec): boolean {
  if (codec === 'ZSTD') return typeof zstdCompressSync === 'function';
  return codec === 'SNAPPY' || codec === 'UNCOMPRESSED' || codec === 'GZIP';
}

// ---------------------------------------------------------------------------------------------
// Staging: the uncompressed pages of one row group, and scratch space reused by every page.

export class Staging {
  /** Pages are written from `pos` on; [0, pos) holds the pages staged so far. */
  buf: Buffer = Buffer.allocUnsafe(1 << 20);
  pos = 0;
  /** PAGE_FIELDS ints per page: start, end, page type, num_values, encoding. */
  pages = new Int32Array(64 * PAGE_FIELDS);
  count = 0;
  indexes = new Int32Array(1024);
  levels = new Uint8Array(1024);
  readonly minMax = new MinMax();

  /** Makes room up to position `n` (keeping the staged bytes and those of the page being written). */
  ensure(n: number): Buffer {
    if (this.buf.length < n) {
      const next = Buffer.allocUnsafe(Math.max(n, this.buf.length * 2));
      this.buf.copy(next, 0, 0, this.buf.length);
      this.buf = next;
    }
    return this.buf;
  }

  addPage(start: number, end: number, pageType: number, numValues: number, encoding: number): void {
    if ((this.count + 1) * PAGE_FIELDS > this.pages.length) {
      const next = new Int32Array(this.pages.length * 2);
      next.set(this.pages);
      this.pages = next;
    }
    const k = this.count++ * PAGE_FIELDS;
    this.pages[k] = start;
    this.pages[k + 1] = end;
    this.pages[k + 2] = pageType;
    this.pages[k + 3] = numValues;
    this.pages[k + 4] = encoding;
    this.pos = end;
  }

  /** Empties the staging for the next row group (keeping its buffers). */
  reset(): void {
    this.pos = 0;
    this.count = 0;
  }

  /** Hands the staged bytes over (e.g. to a worker) and starts a new buffer of the same size. */
  takeBuffer(): Buffer {
    const taken = this.buf;
    this.buf = Buffer.allocUnsafe(taken.length);
    return taken;
  }
}

// ---------------------------------------------------------------------------------------------
// Errors

function fail(column: Column, rowIndex: number, what: string): never {
  throw new Error(`parquet: column ${column.name} ${what} in row ${rowIndex}`);
}

function requiredNull(column: Column, rowIndex: number): never {
  throw new Error(`parquet: required column ${column.name} is null in row ${rowIndex}`);
}

// ---------------------------------------------------------------------------------------------
// Column buffers

export interface ColumnBuffer {
  readonly column: Column;
  /** Appends the value of the next row; returns its approximate size in bytes. */
  push(value: unknown, rowIndex: number): number;
  /** Appends rows [from, to) of a UTF-8 string column (`rowIndex`: the first one's); returns their approximate size. */
  pushUtf8(values: Utf8Values, from: number, to: number, rowIndex: number): number;
  /** Appends rows [from, to) of numbers, NaN for null (`rowIndex`: the first one's); returns their approximate size. */
  pushFloat64(values: Float64Array, from: number, to: number, rowIndex: number): number;
  /** Drops the value pushed for row `n` (a row rejected half-way) if there is one. */
  truncate(n: number): void;
  /** Stages the buffered rows' pages as one column chunk, then empties the buffer. */
  encode(stage: Staging, opts: EncodeOptions): StagedChunk;
}

/** State shared by every column: row count and, for OPTIONAL columns, definition levels. */
abstract class BaseBuffer {
  /** Rows buffered. */
  rows = 0;
  /** Non-null values buffered. */
  count = 0;
  /** Definition level per row (1 = value present); OPTIONAL columns only. */
  defs: Uint8Array | null;

  constructor(
    readonly column: Column,
    capacity: number,
  ) {
    this.defs = column.required ? null : new Uint8Array(capacity);
  }

  /** Records a null for the next row (or throws for a REQUIRED column). */
  protected pushNull(rowIndex: number): number {
    const defs = this.defs;
    if (defs === null) requiredNull(this.column, rowIndex);
    if (this.rows >= defs.length) this.growDefs();
    defs[this.rows++] = 0;
    return 0;
  }

  /** Records a present value for the next row; returns the value's slot. */
  protected pushPresent(): number {
    const defs = this.defs;
    if (defs !== null) {
      if (this.rows >= defs.length) this.growDefs();
      defs[this.rows] = 1;
    }
    this.rows++;
    return this.count++;
  }

  private growDefs(): void {
    const next = new Uint8Array(this.defs!.length * 2);
    next.set(this.defs!);
    this.defs = next;
  }

  abstract push(value: unknown, rowIndex: number): number;

  /** Strings for a column that is not one: push() refuses the first (StringBuffer takes the bytes). */
  pushUtf8(values: Utf8Values, from: number, to: number, rowIndex: number): number {
    let size = 0;
    for (let i = from; i < to; i++) size += this.push(values.value(i), rowIndex++);
    return size;
  }

  /** Numbers (NaN: null) one by one: push() refuses them where they do not fit (Int64Buffer takes them directly). */
  pushFloat64(values: Float64Array, from: number, to: number, rowIndex: number): number {
    let size = 0;
    for (let i = from; i < to; i++) size += this.push(Number.isNaN(values[i]) ? null : values[i], rowIndex++);
    return size;
  }

  truncate(n: number): void {
    if (this.rows <= n) return;
    if (this.defs === null || this.defs[n] === 1) this.count--;
    this.rows = n;
    this.dropLast();
  }

  /** Drops the storage of the last value after truncate() removed a present value. */
  protected dropLast(): void {}

  /** Number of present values among rows [from, to). */
  protected presentIn(from: number, to: number): number {
    const defs = this.defs;
    if (defs === null) return to - from;
    if (from === 0 && to === this.rows) return this.count;
    let n = 0;
    for (let r = from; r < to; r++) n += defs[r];
    return n;
  }

  protected reset(): void {
    this.rows = 0;
    this.count = 0;
  }
}

/** INTEGER and TIMESTAMP: INT64, buffered as (lo, hi) Int32 pairs = the PLAIN little-endian bytes. */
export class Int64Buffer extends BaseBuffer implements ColumnBuffer {
  private words: Int32Array;
  private readonly timestamp: boolean;

  constructor(column: Column, capacity: number) {
    super(column, capacity);
    this.words = new Int32Array(capacity * 2);
    this.timestamp = column.type === 'TIMESTAMP';
  }

  push(value: unknown, rowIndex: number): number {
    if (value === null || value === undefined) return this.pushNull(rowIndex);
    let lo: number;
    let hi: number;
    if (typeof value === 'number') {
      if (value >>> 0 === value) {
        // 0 <= value < 2^32, an integer
        lo = value;
        hi = 0;
      } else {
        if (!Number.isSafeInteger(value)) {
          fail(this.column, rowIndex, this.timestamp ? `expects epoch milliseconds (an integer), got ${value}` : `expects a safe integer, got ${value}`);
        }
        hi = Math.floor(value / 4294967296);
        lo = value - hi * 4294967296;
      }
    } else if (typeof value === 'bigint') {
      if (BigInt.asIntN(64, value) !== value) fail(this.column, rowIndex, `value ${value} is out of INT64 range`);
      lo = Number(BigInt.asUintN(32, value));
      hi = Number(BigInt.asIntN(32, value >> 32n));
    } else if (this.timestamp && value instanceof Date) {
      const ms = value.getTime();
      if (Number.isNaN(ms)) fail(this.column, rowIndex, 'got an invalid Date');
      hi = Math.floor(ms / 4294967296);
      lo = ms - hi * 4294967296;
    } else {
      fail(
        this.column,
        rowIndex,
        this.timestamp ? `expects epoch milliseconds (number), got ${typeof value}` : `expects an integer (number or bigint), got ${typeof value}`,
      );
    }
    const slot = this.pushPresent();
    let words = this.words;
    if (slot * 2 >= words.length) {
      words = new Int32Array(words.length * 2);
      words.set(this.words);
      this.words = words;
    }
    words[slot * 2] = lo;
    words[slot * 2 + 1] = hi;
    return 8;
  }

  /** Numbers, NaN for null: push() of each (its number path, the cheap one). */
  override pushFloat64(values: Float64Array, from: number, to: number, rowIndex: number): number {
    let size = 0;
    for (let i = from; i < to; i++, rowIndex++) {
      const value = values[i];
      size += value !== value ? this.pushNull(rowIndex) : this.push(value, rowIndex);
    }
    return size;
  }

  encode(stage: Staging, opts: EncodeOptions): StagedChunk {
    const { rows, count, words } = this;
    const chunk = new ChunkWriter(this.column, 'INT64', stage, opts);
    const bytes = new Uint8Array(words.buffer, words.byteOffset, count * 8);
    const rowsPerPage = Math.max(1, Math.floor(opts.pageBytes / 8));
    let v = 0;
    for (let r = 0; r < rows; r += rowsPerPage) {
      const end = Math.min(rows, r + rowsPerPage);
      const present = this.presentIn(r, end);
      let pos = chunk.beginDataPage(this.defs, r, end, present * 8);
      stage.buf.set(bytes.subarray(v * 8, (v + present) * 8), pos);
      pos += present * 8;
      chunk.endDataPage(pos, end - r, 'PLAIN');
      v += present;
    }
    const statistics = opts.statistics ? int64Statistics(words, count, rows - count) : undefined;
    this.reset();
    return chunk.finish(rows, statistics);
  }
}

const int64View = new DataView(new ArrayBuffer(16));

/** Min/max of the INT64 values (lo, hi pairs) words[0, 2 * count), as bigints, and the null count. */
function int64Statistics(words: Int32Array, count: number, nulls: number): ChunkStatistics {
  const statistics: ChunkStatistics = { null_count: BigInt(nulls) };
  if (count === 0) return statistics;
  let minHi = words[1];
  let minLo = words[0] >>> 0;
  let maxHi = minHi;
  let maxLo = minLo;
  for (let i = 2; i < count * 2; i += 2) {
    const hi = words[i + 1];
    if (hi <= minHi) {
      const lo = words[i] >>> 0;
      if (hi < minHi || lo < minLo) {
        minHi = hi;
        minLo = lo;
      }
    }
    if (hi >= maxHi) {
      const lo = words[i] >>> 0;
      if (hi > maxHi || lo > maxLo) {
        maxHi = hi;
        maxLo = lo;
      }
    }
  }
  // bigints through a DataView: BigInt() and bigint shifts right after a hot loop make V8
  // deoptimize the enclosing function again and again
  int64View.setUint32(0, minLo, true);
  int64View.setInt32(4, minHi, true);
  int64View.setUint32(8, maxLo, true);
  int64View.setInt32(12, maxHi, true);
  statistics.min_value = int64View.getBigInt64(0, true);
  statistics.max_value = int64View.getBigInt64(8, true);
  return statistics;
}

export class BooleanBuffer extends BaseBuffer implements ColumnBuffer {
  private values: Uint8Array;

  constructor(column: Column, capacity: number) {
    super(column, capacity);
    this.values = new Uint8Array(capacity);
  }

  push(value: unknown, rowIndex: number): number {
    if (value === null || value === undefined) return this.pushNull(rowIndex);
    if (typeof value !== 'boolean') fail(this.column, rowIndex, `expects a boolean, got ${typeof value}`);
    const slot = this.pushPresent();
    if (slot >= this.values.length) {
      const next = new Uint8Array(this.values.length * 2);
      next.set(this.values);
      this.values = next;
    }
    this.values[slot] = value ? 1 : 0;
    return 1;
  }

  encode(stage: Staging, opts: EncodeOptions): StagedChunk {
    const { rows, count, values } = this;
    const chunk = new ChunkWriter(this.column, 'BOOLEAN', stage, opts);
    const rowsPerPage = Math.max(8, Math.floor(opts.pageBytes * 8));
    let v = 0;
    for (let r = 0; r < rows; r += rowsPerPage) {
      const end = Math.min(rows, r + rowsPerPage);
      const present = this.presentIn(r, end);
      let pos = chunk.beginDataPage(this.defs, r, end, (present + 7) >> 3);
      pos = packBits(values, v, v + present, stage.buf, pos);
      chunk.endDataPage(pos, end - r, 'PLAIN');
      v += present;
    }
    let statistics: ChunkStatistics | undefined;
    if (opts.statistics) {
      statistics = { null_count: BigInt(rows - count) };
      if (count > 0) {
        let trues = 0;
        for (let i = 0; i < count; i++) trues += values[i];
        statistics.min_value = trues === count;
        statistics.max_value = trues > 0;
      }
    }
    this.reset();
    return chunk.finish(rows, statistics);
  }
}

/** Strings: buffered as JS strings, UTF-8 encoded straight into the page buffer when encoded. */
export class StringBuffer extends BaseBuffer implements ColumnBuffer {
  /** values[0, count) are the group's; the array is reused from group to group. */
  private readonly values: string[] = [];

  push(value: unknown, rowIndex: number): number {
    if (value === null || value === undefined) return this.pushNull(rowIndex);
    if (typeof value !== 'string') fail(this.column, rowIndex, `expects a string, got ${typeof value}`);
    const slot = this.pushPresent();
    if (slot < this.values.length) this.values[slot] = value;
    else this.values.push(value);
    return value.length + 4;
  }

  /**
   * UTF-8 bytes as strings: short values from one decode of the range, a slice each while it is
   * ASCII; long ones (content bodies) one by one, so that none keeps the others alive.
   */
  override pushUtf8(values: Utf8Values, from: number, to: number, rowIndex: number): number {
    const { offsets, nulls } = values;
    const bytes = Buffer.from(values.bytes.buffer, values.bytes.byteOffset, values.bytes.byteLength);
    const start = offsets[from];
    const length = offsets[to] - start;
    const joined = length < SLICE_MAX_AVERAGE * (to - from) ? bytes.toString('utf8', start, offsets[to]) : undefined;
    const ascii = joined !== undefined && joined.length === length;
    let size = 0;
    for (let i = from; i < to; i++, rowIndex++) {
      if (nulls[i] === 1) size += this.pushNull(rowIndex);
      else size += this.push(ascii ? joined.slice(offsets[i] - start, offsets[i + 1] - start) : bytes.toString('utf8', offsets[i], offsets[i + 1]), rowIndex);
    }
    return size;
  }

  encode(stage: Staging, opts: EncodeOptions): StagedChunk {
    const values = this.values;
    const rows = this.rows;
    const count = this.count;
    const defs = this.defs;
    const chunk = new ChunkWriter(this.column, 'BYTE_ARRAY', stage, opts);
    const minMax = opts.statistics ? stage.minMax.reset() : null;
    const dict = looksLowCardinality(values, count) ? buildDictionary(values, count, stage, opts.dictionaryBytes) : undefined;
    if (dict) {
      // dictionary page: the distinct values, PLAIN (and the statistics are theirs)
      const entries = dict.entries;
      const start = stage.pos;
      let pos = start;
      for (let i = 0; i < entries.length; i++) pos = putString(stage, pos, entries[i], minMax);
      chunk.writeDictionaryPage(start, pos, entries.length);
      // data pages: bit width, then RLE/bit-packed indexes
      const width = Math.max(1, 32 - Math.clz32(entries.length - 1));
      const indexes = stage.indexes;
      const rowsPerPage = Math.max(8, Math.floor((opts.pageBytes * 8) / width));
      let v = 0;
      for (let r = 0; r < rows; r += rowsPerPage) {
        const end = Math.min(rows, r + rowsPerPage);
        const present = this.presentIn(r, end);
        let p = chunk.beginDataPage(defs, r, end, 1 + rleBound(present, width));
        stage.buf[p++] = width;
        p = rleHybrid(indexes, v, v + present, width, stage.buf, p);
        chunk.endDataPage(p, end - r, 'PLAIN_DICTIONARY');
        v += present;
      }
    } else {
      // PLAIN, one pass: each page's values are written (and their statistics taken) after room
      // for the definition levels, which are put right before them once the page's rows are known
      let v = 0;
      let r = 0;
      while (r < rows) {
        const valuesStart = stage.pos + (defs === null ? 0 : 4 + rleBound(rows - r, 1));
        const limit = valuesStart + opts.pageBytes;
        stage.ensure(valuesStart + 4096);
        let pos = valuesStart;
        let end = r;
        if (defs === null) {
          while (end < rows && pos < limit) pos = putString(stage, pos, values[end++], minMax);
          v = end;
        } else {
          while (end < rows && pos < limit) {
            if (defs[end++] === 1) pos = putString(stage, pos, values[v++], minMax);
          }
        }
        const start = defs === null ? valuesStart : chunk.putLevelsBefore(defs, r, end, valuesStart);
        chunk.endDataPage(pos, end - r, 'PLAIN', start);
        r = end;
      }
    }
    let statistics: ChunkStatistics | undefined;
    if (opts.statistics) {
      statistics = { null_count: BigInt(rows - count) };
      if (count > 0) {
        statistics.min_value = minMax!.min();
        statistics.max_value = minMax!.max();
      }
    }
    this.reset();
    return chunk.finish(rows, statistics);
  }
}

export function columnBuffer(column: Column, capacity: number): ColumnBuffer {
  switch (column.type) {
    case 'INTEGER':
    case 'TIMESTAMP':
      return new Int64Buffer(column, capacity);
    case 'STRING':
      return new StringBuffer(column, capacity);
    case 'BOOLEAN':
      return new BooleanBuffer(column, capacity);
  }
}

type ChunkStatistics = NonNullable<ChunkMeta['meta_data']['statistics']>;

// ---------------------------------------------------------------------------------------------
// Strings

const SAMPLE = 512;
/** Average length of a range's UTF-8 values from which pushUtf8 decodes them one by one. */
const SLICE_MAX_AVERAGE = 256;

/** Whether at most half of a sample spread over the values is distinct (dictionary candidate). */
function looksLowCardinality(values: string[], n: number): boolean {
  if (n === 0) return false;
  const step = n <= SAMPLE ? 1 : n / SAMPLE;
  const seen = new Set<string>();
  let count = 0;
  for (let f = 0; f < n; f += step) {
    count++;
    seen.add(values[Math.floor(f)]);
  }
  return seen.size * 2 <= count;
}

/**
 * Dictionary of the column chunk's values, with each value's index in stage.indexes; undefined
 * when the values turn out not to repeat enough (more than half distinct) or the dictionary would
 * exceed `maxBytes`.
 */
function buildDictionary(values: string[], n: number, stage: Staging, maxBytes: number): { entries: string[] } | undefined {
  if (stage.indexes.length < n) stage.indexes = new Int32Array(Math.max(n, stage.indexes.length * 2));
  const indexes = stage.indexes;
  const map = new Map<string, number>();
  const entries: string[] = [];
  const maxEntries = Math.max(1, n >> 1);
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const s = values[i];
    let k = map.get(s);
    if (k === undefined) {
      k = entries.length;
      bytes += s.length + 4;
      if (k >= maxEntries || bytes > maxBytes) return undefined;
      map.set(s, k);
      entries.push(s);
    }
    indexes[i] = k;
  }
  return { entries };
}

/**
 * Writes `s` PLAIN (4-byte length + UTF-8) into the staging buffer at `pos` (growing it) and adds
 * it to the statistics; returns the position after it.
 */
function putString(stage: Staging, pos: number, s: string, minMax: MinMax | null): number {
  const len = s.length;
  let b = stage.buf;
  if (pos + 4 + len * 3 > b.length) b = stage.ensure(pos + 4 + len * 3);
  const start = pos + 4;
  let w: number;
  if (len <= 64) {
    // short strings: a byte loop beats a native call per value while the chars are ASCII
    let k = 0;
    for (; k < len; k++) {
      const c = s.charCodeAt(k);
      if (c >= 0x80) break;
      b[start + k] = c;
    }
    w = k === len ? len : b.write(s, start, 'utf8');
  } else {
    w = b.write(s, start, 'utf8');
  }
  b[pos] = w;
  b[pos + 1] = w >>> 8;
  b[pos + 2] = w >>> 16;
  b[pos + 3] = w >>> 24;
  if (minMax !== null) minMax.add(s, w === len);
  return start + w;
}

/**
 * Min and max of a column chunk's strings in UTF-8 byte order (unsigned lexicographic: parquet's
 * order for STRING). While the values are ASCII that is JS string order (`<`, native and cheap);
 * once a value is not, comparisons use compareUtf8 (UTF-16 code unit order misorders
 * supplementary characters against U+E000..U+FFFF).
 */
export class MinMax {
  private lo: string | null = null;
  private hi: string | null = null;
  private ascii = true;

  reset(): this {
    this.lo = null;
    this.hi = null;
    this.ascii = true;
    return this;
  }

  /** `ascii`: whether `s` is ASCII only (its UTF-8 length is its length). */
  add(s: string, ascii: boolean): void {
    const lo = this.lo;
    if (lo === null) {
      this.lo = s;
      this.hi = s;
      this.ascii = ascii;
      return;
    }
    if (ascii && this.ascii) {
      if (s < lo) this.lo = s;
      else if (s > this.hi!) this.hi = s;
      return;
    }
    this.ascii = false;
    if (compareUtf8(s, lo) < 0) this.lo = s;
    else if (compareUtf8(s, this.hi!) > 0) this.hi = s;
  }

  /** A copy: the footer keeps it until the file ends, and the value may be a slice of a much larger string. */
  min(): string | undefined {
    return this.lo === null ? undefined : own(this.lo);
  }

  max(): string | undefined {
    return this.hi === null ? undefined : own(this.hi);
  }
}

/**
 * A string that holds only its own characters. V8 makes a substring of 13 or more characters a view
 * into its parent, which it keeps alive (source/segment.ts decodes a column's values as slices of one
 * string); UTF-16LE round-trips every code unit, lone surrogates included.
 */
function own(s: string): string {
  return s.length < 13 ? s : Buffer.from(s, 'utf16le').toString('utf16le');
}

/**
 * Compares strings in UTF-8 byte order, which is code point order. Lone surrogates compare as
 * U+FFFD, which is what they are written as.
 */
export function compareUtf8(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  if (i === n) return a.length - b.length;
  // back up to the start of a surrogate pair split by the difference
  if (i > 0) {
    const prev = a.charCodeAt(i - 1);
    if (prev >= 0xd800 && prev <= 0xdbff) i--;
  }
  const ca = codePoint(a, i);
  const cb = codePoint(b, i);
  if (ca !== cb) return ca - cb;
  // same code point from different code units: only lone surrogates (U+FFFD) vs U+FFFD itself
  const step = ca > 0xffff ? 2 : 1;
  return compareUtf8(a.slice(i + step), b.slice(i + step));
}

function codePoint(s: string, i: number): number {
  const c = s.codePointAt(i)!;
  return c >= 0xd800 && c <= 0xdfff ? 0xfffd : c;
}

// ---------------------------------------------------------------------------------------------
// RLE / bit-packed hybrid and bit packing

/** Upper bound of the RLE/bit-packed hybrid bytes of n values of `width` bits. */
function rleBound(n: number, width: number): number {
  // per 8 values: bit-packed `width` bytes, or an RLE run (>= 8 values) of a 1-byte header (a
  // longer header means >= 64 values) plus the value; plus one bit-packed run header per segment
  return Math.ceil(n / 8) * (width + ((width + 7) >> 3) + 2) + 16;
}

/**
 * Encodes values[from, to) (each < 2^width, width <= 24) as the RLE/bit-packed hybrid into `b` at
 * `pos`; returns the position after. Runs of 8 or more equal values become RLE runs; the rest is
 * bit-packed in groups of 8 (at most 63 groups per run, as parquet-mr writes them).
 */
export function rleHybrid(values: ArrayLike<number>, from: number, to: number, width: number, b: Uint8Array, pos: number): number {
  const valueBytes = (width + 7) >> 3;
  let pending = from; // first value not yet written
  let i = from;
  while (i < to) {
    const v = values[i];
    let j = i + 1;
    while (j < to && values[j] === v) j++;
    if (j - i >= 8) {
      // the pending values must end on a group of 8: borrow from the run
      const pad = (8 - ((i - pending) & 7)) & 7;
      if (j - i - pad >= 8) {
        const runStart = i + pad;
        if (runStart > pending) pos = bitPackRuns(values, pending, runStart, width, b, pos);
        let header = (j - runStart) * 2;
        while (header >= 0x80) {
          b[pos++] = (header & 0x7f) | 0x80;
          header = Math.floor(header / 128);
        }
        b[pos++] = header;
        for (let k = 0; k < valueBytes; k++) b[pos++] = (v >>> (8 * k)) & 0xff;
        pending = j;
      }
    }
    i = j;
  }
  if (pending < to) pos = bitPackRuns(values, pending, to, width, b, pos);
  return pos;
}

/** Bit-packed runs of values[from, to) (a multiple of 8 values unless it ends the data). */
function bitPackRuns(values: ArrayLike<number>, from: number, to: number, width: number, b: Uint8Array, pos: number): number {
  while (from < to) {
    const n = Math.min(to - from, 504);
    const groups = (n + 7) >> 3;
    b[pos++] = (groups << 1) | 1;
    const stop = from + groups * 8;
    if (width === 1) {
      const full = from + (n & ~7);
      let k = from;
      for (; k < full; k += 8) {
        b[pos++] =
          values[k] |
          (values[k + 1] << 1) |
          (values[k + 2] << 2) |
          (values[k + 3] << 3) |
          (values[k + 4] << 4) |
          (values[k + 5] << 5) |
          (values[k + 6] << 6) |
          (values[k + 7] << 7);
      }
      if (k < stop) {
        // the last, partial group (only at the end of the data), padded with zeros
        let byte = 0;
        for (let bit = 0; k + bit < to; bit++) byte |= values[k + bit] << bit;
        b[pos++] = byte;
      }
    } else {
      let acc = 0;
      let bits = 0;
      for (let k = from; k < stop; k++) {
        const x = k < to ? values[k] : 0;
        acc |= x << bits;
        bits += width;
        while (bits >= 8) {
          b[pos++] = acc & 0xff;
          acc >>>= 8;
          bits -= 8;
        }
      }
    }
    from += n;
  }
  return pos;
}

/** PLAIN booleans: bit-packed, least significant bit first; returns the position after. */
function packBits(values: Uint8Array, from: number, to: number, b: Uint8Array, pos: number): number {
  for (let k = from; k < to; k += 8) {
    let byte = 0;
    const n = Math.min(8, to - k);
    for (let bit = 0; bit < n; bit++) byte |= values[k + bit] << bit;
    b[pos++] = byte;
  }
  return pos;
}

// ---------------------------------------------------------------------------------------------
// Pages of one column chunk

/** A column chunk whose pages are staged: its metadata but for the framed sizes and offsets. */
export interface StagedChunk {
  column: Column;
  type: ChunkMeta['meta_data']['type'];
  /** Its pages in the staging: [firstPage, endPage); the first one is the dictionary page if any. */
  firstPage: number;
  endPage: number;
  dictionary: boolean;
  rows: number;
  encoding: Encoding;
  statistics: ChunkStatistics | undefined;
}

/**
 * The column chunk metadata of a staged chunk, given the framed pages' sizes (sizes[2i] header,
 * sizes[2i + 1] body of page i) and the file offset of each page (offsets[i]).
 */
export function stagedChunkMeta(c: StagedChunk, stage: { pages: Int32Array }, sizes: Int32Array, offsets: Float64Array, opts: EncodeOptions): ChunkMeta {
  let compressed = 0;
  let uncompressed = 0;
  for (let i = c.firstPage; i < c.endPage; i++) {
    const size = stage.pages[i * PAGE_FIELDS + 1] - stage.pages[i * PAGE_FIELDS];
    compressed += sizes[i * 2] + sizes[i * 2 + 1];
    uncompressed += sizes[i * 2] + size;
  }
  const dataPages = c.endPage - c.firstPage - (c.dictionary ? 1 : 0);
  const encodings: Encoding[] = [c.dictionary ? 'PLAIN_DICTIONARY' : c.encoding];
  if (!c.column.required) encodings.push('RLE');
  const meta: ChunkMeta['meta_data'] = {
    type: c.type,
    encodings,
    path_in_schema: [c.column.name],
    codec: opts.codec,
    num_values: BigInt(c.rows),
    total_uncompressed_size: BigInt(uncompressed),
    total_compressed_size: BigInt(compressed),
    data_page_offset: BigInt(offsets[c.firstPage + (c.dictionary ? 1 : 0)]),
  };
  if (c.dictionary) meta.dictionary_page_offset = BigInt(offsets[c.firstPage]);
  if (c.statistics) meta.statistics = c.statistics;
  if (opts.statistics) {
    meta.encoding_stats = [];
    if (c.dictionary) meta.encoding_stats.push({ page_type: 'DICTIONARY_PAGE', encoding: 'PLAIN_DICTIONARY', count: 1 });
    meta.encoding_stats.push({ page_type: 'DATA_PAGE', encoding: c.encoding, count: dataPages });
  }
  return { file_offset: BigInt(offsets[c.firstPage]), meta_data: meta };
}

/** Stages the pages of one column chunk. */
class ChunkWriter {
  private readonly firstPage: number;
  private pageStart = 0;
  private dictionary = false;
  private encoding: Encoding = 'PLAIN';

  constructor(
    private readonly column: Column,
    private readonly type: ChunkMeta['meta_data']['type'],
    private readonly stage: Staging,
    private readonly opts: EncodeOptions,
  ) {
    this.firstPage = stage.count;
  }

  /** The dictionary page's PLAIN bytes are in stage.buf[start, end). */
  writeDictionaryPage(start: number, end: number, entries: number): void {
    this.dictionary = true;
    this.stage.addPage(start, end, PAGE_TYPE.DICTIONARY_PAGE, entries, ENCODING.PLAIN_DICTIONARY);
  }

  /**
   * Writes the definition levels of rows [from, to) (4-byte length + RLE/bit-packed hybrid) so
   * that they end at `valuesStart` (room reserved by the caller: 4 + rleBound(to - from, 1));
   * returns where the page starts.
   */
  putLevelsBefore(defs: Uint8Array, from: number, to: number, valuesStart: number): number {
    const stage = this.stage;
    const bound = rleBound(to - from, 1);
    if (stage.levels.length < bound) stage.levels = new Uint8Array(bound * 2);
    const len = rleHybrid(defs, from, to, 1, stage.levels, 0);
    const start = valuesStart - len - 4;
    const page = stage.buf;
    page[start] = len;
    page[start + 1] = len >>> 8;
    page[start + 2] = len >>> 16;
    page[start + 3] = len >>> 24;
    page.set(stage.levels.subarray(0, len), start + 4);
    return start;
  }

  /**
   * Starts a data page for rows [from, to) at stage.pos: writes their definition levels (OPTIONAL
   * columns) and makes room for `valueBytes` more; returns where the values go in stage.buf.
   */
  beginDataPage(defs: Uint8Array | null, from: number, to: number, valueBytes: number): number {
    const stage = this.stage;
    const start = stage.pos;
    this.pageStart = start;
    const levelBytes = defs === null ? 0 : 4 + rleBound(to - from, 1);
    const page = stage.ensure(start + levelBytes + valueBytes);
    if (defs === null) return start;
    const end = rleHybrid(defs, from, to, 1, page, start + 4);
    const len = end - start - 4;
    page[start] = len;
    page[start + 1] = len >>> 8;
    page[start + 2] = len >>> 16;
    page[start + 3] = len >>> 24;
    return end;
  }

  /** The data page's bytes are in stage.buf[start, end) (start: from beginDataPage by default). */
  endDataPage(end: number, numValues: number, encoding: Encoding, start = this.pageStart): void {
    this.stage.addPage(start, end, PAGE_TYPE.DATA_PAGE, numValues, ENCODING[encoding]);
    this.encoding = encoding;
  }

  finish(rows: number, statistics: ChunkStatistics | undefined): StagedChunk {
    return {
      column: this.column,
      type: this.type,
      firstPage: this.firstPage,
      endPage: this.stage.count,
      dictionary: this.dictionary,
      rows,
      encoding: this.encoding,
      statistics: this.opts.statistics ? statistics : undefined,
    };
  }
}
