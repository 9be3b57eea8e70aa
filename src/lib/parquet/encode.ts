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
import { BytesTable } from './bytes-table.js';
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

  protected growDefs(least = 0): void {
    const next = new Uint8Array(Math.max(least, this.defs!.length * 2));
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
    if (typeof value === 'number') return this.putNumber(value, rowIndex);
    let lo: number;
    let hi: number;
    if (typeof value === 'bigint') {
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
    this.putWords(lo, hi);
    return 8;
  }

  override pushFloat64(values: Float64Array, from: number, to: number, rowIndex: number): number {
    let size = 0;
    for (let i = from; i < to; i++, rowIndex++) {
      const value = values[i];
      size += value !== value ? this.pushNull(rowIndex) : this.putNumber(value, rowIndex);
    }
    return size;
  }

  private putNumber(value: number, rowIndex: number): number {
    if (value >>> 0 === value) {
      // 0 <= value < 2^32, an integer
      this.putWords(value, 0);
      return 8;
    }
    if (!Number.isSafeInteger(value)) {
      fail(this.column, rowIndex, this.timestamp ? `expects epoch milliseconds (an integer), got ${value}` : `expects a safe integer, got ${value}`);
    }
    const hi = Math.floor(value / 4294967296);
    this.putWords(value - hi * 4294967296, hi);
    return 8;
  }

  private putWords(lo: number, hi: number): void {
    const slot = this.pushPresent();
    let words = this.words;
    if (slot * 2 >= words.length) {
      words = new Int32Array(words.length * 2);
      words.set(this.words);
      this.words = words;
    }
    words[slot * 2] = lo;
    words[slot * 2 + 1] = hi;
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

/**
 * Strings: buffered as their PLAIN encoding (4-byte length + UTF-8), back to back in one buffer,
 * from JS strings (push: encoded as they come, so no string outlives its row) or from UTF-8 bytes
 * (pushUtf8: copied, no string at all). A PLAIN page is then one copy; the dictionary and the
 * statistics work on the bytes (UTF-8 byte order is parquet's order for strings).
 */
export class StringBuffer extends BaseBuffer implements ColumnBuffer {
  /** The present values' PLAIN bytes: value v is data[v === 0 ? 0 : ends[v - 1], ends[v]). */
  private data: Buffer = Buffer.allocUnsafe(1 << 16);
  private ends = new Int32Array(1024);
  private used = 0;
  private readonly table = new BytesTable();

  push(value: unknown, rowIndex: number): number {
    if (value === null || value === undefined) return this.pushNull(rowIndex);
    if (typeof value !== 'string') fail(this.column, rowIndex, `expects a string, got ${typeof value}`);
    const len = value.length;
    const b = this.room(4 + len * 3);
    const start = this.used + 4;
    let w: number;
    if (len <= 64) {
      // short strings: a byte loop beats a native call per value while the chars are ASCII
      let k = 0;
      for (; k < len; k++) {
        const c = value.charCodeAt(k);
        if (c >= 0x80) break;
        b[start + k] = c;
      }
      w = k === len ? len : b.write(value, start, 'utf8');
    } else {
      w = b.write(value, start, 'utf8');
    }
    this.put(w);
    return len + 4;
  }

  override pushUtf8(values: Utf8Values, from: number, to: number, rowIndex: number): number {
    const { bytes, offsets, nulls } = values;
    const n = to - from;
    // room for the whole range at once, then one tight loop (the export's hot path)
    const b = this.room(offsets[to] - offsets[from] + 4 * n);
    if (this.defs !== null && this.rows + n > this.defs.length) this.growDefs(this.rows + n);
    if (this.count + n > this.ends.length) {
      const next = new Int32Array(Math.max(this.ends.length * 2, this.count + n));
      next.set(this.ends);
      this.ends = next;
    }
    const { defs, ends } = this;
    const first = this.used;
    let at = first;
    let rows = this.rows;
    let count = this.count;
    for (let i = from; i < to; i++) {
      if (nulls[i] === 1) {
        if (defs === null) {
          this.rows = rows;
          this.count = count;
          this.used = at;
          requiredNull(this.column, rowIndex + i - from);
        }
        defs[rows++] = 0;
        continue;
      }
      const s = offsets[i];
      const len = offsets[i + 1] - s;
      b[at] = len;
      b[at + 1] = len >>> 8;
      b[at + 2] = len >>> 16;
      b[at + 3] = len >>> 24;
      at += 4;
      if (len > 32) b.set(bytes.subarray(s, s + len), at);
      else for (let k = 0; k < len; k++) b[at + k] = bytes[s + k];
      at += len;
      if (defs !== null) defs[rows] = 1;
      rows++;
      ends[count++] = at;
    }
    this.rows = rows;
    this.count = count;
    this.used = at;
    return at - first;
  }

  /** Room for `n` more bytes of data; returns the data buffer. */
  private room(n: number): Buffer {
    if (this.used + n > this.data.length) {
      const next = Buffer.allocUnsafe(Math.max(this.data.length * 2, this.used + n));
      this.data.copy(next, 0, 0, this.used);
      this.data = next;
    }
    return this.data;
  }

  /** Completes the value whose `len` bytes were written after room for its length. */
  private put(len: number): void {
    const b = this.data;
    const at = this.used;
    b[at] = len;
    b[at + 1] = len >>> 8;
    b[at + 2] = len >>> 16;
    b[at + 3] = len >>> 24;
    const slot = this.pushPresent();
    if (slot === this.ends.length) {
      const next = new Int32Array(slot * 2);
      next.set(this.ends);
      this.ends = next;
    }
    this.used = this.ends[slot] = at + 4 + len;
  }

  protected override dropLast(): void {
    this.used = this.count === 0 ? 0 : this.ends[this.count - 1];
  }

  encode(stage: Staging, opts: EncodeOptions): StagedChunk {
    const { rows, count, defs, data, ends } = this;
    const chunk = new ChunkWriter(this.column, 'BYTE_ARRAY', stage, opts);
    const dict = this.looksLowCardinality() && this.buildDictionary(stage, opts.dictionaryBytes);
    let statistics: ChunkStatistics | undefined;
    if (opts.statistics) {
      statistics = { null_count: BigInt(rows - count) };
      if (count > 0) {
        // over the distinct values when there is a dictionary
        const values = dict ? this.table : new PlainValues(data, ends, count);
        const [min, max] = minMax(values);
        statistics.min_value = textOf(values, min);
        statistics.max_value = textOf(values, max);
      }
    }
    if (dict) {
      // dictionary page: the distinct values, PLAIN
      const table = this.table;
      const entries = table.size;
      const start = stage.pos;
      let pos = start;
      const buf = stage.ensure(start + table.end(entries - 1) + 4 * entries);
      const bytes = table.bytes();
      for (let k = 0; k < entries; k++) {
        const from = table.start(k);
        const len = table.end(k) - from;
        buf[pos] = len;
        buf[pos + 1] = len >>> 8;
        buf[pos + 2] = len >>> 16;
        buf[pos + 3] = len >>> 24;
        buf.set(bytes.subarray(from, from + len), pos + 4);
        pos += 4 + len;
      }
      chunk.writeDictionaryPage(start, pos, entries);
      // data pages: bit width, then RLE/bit-packed indexes
      const width = Math.max(1, 32 - Math.clz32(entries - 1));
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
      // PLAIN: the buffered bytes as they are, a page at a time (values until the page's size is reached)
      let v = 0;
      let r = 0;
      while (r < rows) {
        const from = valueStart(ends, v);
        let bytes = 0;
        let end = r;
        while (end < rows && bytes < opts.pageBytes) {
          if (defs === null || defs[end] === 1) bytes = ends[v++] - from;
          end++;
        }
        const pos = chunk.beginDataPage(defs, r, end, bytes);
        stage.buf.set(data.subarray(from, from + bytes), pos);
        chunk.endDataPage(pos + bytes, end - r, 'PLAIN');
        r = end;
      }
    }
    this.reset();
    this.used = 0;
    // a group of big values (content bodies) does not keep its buffer for the next group
    if (this.data.length > 1 << 22) this.data = Buffer.allocUnsafe(1 << 16);
    return chunk.finish(rows, statistics);
  }

  /** Whether at most half of a sample spread over the values is distinct (dictionary candidate). */
  private looksLowCardinality(): boolean {
    const n = this.count;
    if (n === 0) return false;
    const step = n <= SAMPLE ? 1 : n / SAMPLE;
    const table = this.table;
    table.clear();
    let sampled = 0;
    for (let f = 0; f < n; f += step) {
      sampled++;
      const v = Math.floor(f);
      const from = valueStart(this.ends, v) + 4;
      if (table.lookup(this.data, from, this.ends[v]) < 0) table.add(this.data, from, this.ends[v]);
    }
    return table.size * 2 <= sampled;
  }

  /**
   * The chunk's dictionary in `table` (entries in order of first sight), with each value's index in
   * stage.indexes; false when the values turn out not to repeat enough (more than half distinct) or
   * the dictionary would exceed `maxBytes`.
   */
  private buildDictionary(stage: Staging, maxBytes: number): boolean {
    const n = this.count;
    if (stage.indexes.length < n) stage.indexes = new Int32Array(Math.max(n, stage.indexes.length * 2));
    const indexes = stage.indexes;
    const { data, ends, table } = this;
    table.clear();
    const maxEntries = Math.max(1, n >> 1);
    let bytes = 0;
    let from = 4;
    for (let v = 0; v < n; v++) {
      const to = ends[v];
      let k = table.lookup(data, from, to);
      if (k < 0) {
        bytes += to - from + 4;
        if (table.size >= maxEntries || bytes > maxBytes) return false;
        k = table.add(data, from, to);
      }
      indexes[v] = k;
      from = to + 4;
    }
    return true;
  }
}

/** Where value v's PLAIN bytes start (its 4-byte length). */
function valueStart(ends: Int32Array, v: number): number {
  return v === 0 ? 0 : ends[v - 1];
}

/** Byte strings k = 0 … size − 1, each bytes()[start(k), end(k)): a BytesTable, or buffered PLAIN values. */
interface ByteStrings {
  readonly size: number;
  bytes(): Uint8Array;
  start(k: number): number;
  end(k: number): number;
}

/** A StringBuffer's values, without their 4-byte lengths. */
class PlainValues implements ByteStrings {
  constructor(
    private readonly data: Uint8Array,
    private readonly ends: Int32Array,
    readonly size: number,
  ) {}

  bytes(): Uint8Array {
    return this.data;
  }

  start(k: number): number {
    return valueStart(this.ends, k) + 4;
  }

  end(k: number): number {
    return this.ends[k];
  }
}

/** Byte string k as a string. */
function textOf(values: ByteStrings, k: number): string {
  const b = values.bytes();
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8', values.start(k), values.end(k));
}

/** The least and the greatest of the byte strings, in unsigned byte order (UTF-8: code point order). */
function minMax(values: ByteStrings): [number, number] {
  const b = values.bytes();
  let min = 0;
  let max = 0;
  for (let k = 1; k < values.size; k++) {
    const s = values.start(k);
    const e = values.end(k);
    if (compareBytes(b, s, e, values.start(min), values.end(min)) < 0) min = k;
    else if (compareBytes(b, s, e, values.start(max), values.end(max)) > 0) max = k;
  }
  return [min, max];
}

/** Compares b[as, ae) with b[bs, be) byte by byte, unsigned (for UTF-8: code point order). */
function compareBytes(b: Uint8Array, as: number, ae: number, bs: number, be: number): number {
  const n = Math.min(ae - as, be - bs);
  for (let i = 0; i < n; i++) {
    const d = b[as + i] - b[bs + i];
    if (d !== 0) return d;
  }
  return ae - as - (be - bs);
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

const SAMPLE = 512;

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
