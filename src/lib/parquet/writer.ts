// parquet/: a self-contained encoder, rows → parquet bytes → a BlockSink. It imports nothing of the
// app (only its own files, node built-ins and hyparquet-writer for the footer), so it could be its
// own package; the app hands it columns of the same shape as contract/schemas.ts.
//
// Rows → parquet, streamed: the current row group is kept as typed column buffers; when full, our
// own column-chunk encoder (encode.ts) stages its pages uncompressed (DATA_PAGE v1; PLAIN,
// or PLAIN_DICTIONARY for repetitive strings; RLE/bit-packed definition levels), then they are
// framed (page header + body compressed per the codec, SNAPPY by snappy.ts) by
// pages.ts, for big SNAPPY groups on a worker thread (worker.ts) while the next
// group is buffered. The framed bytes go to a BlockSink in blocks of blockBytes (one staged block of
// a block blob each). The footer is written with hyparquet-writer's metadata writer.
//
// Memory is bounded by about two row groups, whatever the number of rows written: the group being
// buffered (column buffers, reused from group to group) and at most one group being framed in the
// worker (its staged pages and framed bytes), plus one block.
//
// Physical/logical types (SPEC section 2) come from the caller's columns (the app's contract/schemas.ts) via parquetSchema(); nothing is
// auto-detected.

import { ByteWriter } from 'hyparquet-writer';
import type { SchemaElement } from 'hyparquet-writer';
import { writeMetadata } from 'hyparquet-writer/src/metadata.js';
import {
  Staging,
  bodyCompressor,
  codecAvailable,
  columnBuffer,
  stagedChunkMeta,
  type ChunkMeta,
  type ColumnBuffer,
  type EncodeOptions,
  type ParquetCodec,
  type StagedChunk,
} from './encode.js';
import { PAGE_FIELDS, createPageFramer } from './pages.js';
import { createSnappy } from './snappy.js';
import { framingWorker, type Framed } from './worker.js';
import type { Column, Utf8Values } from './columns.js';

export type { ParquetCodec } from './encode.js';

/** Receives the file's bytes in order; each call is one staged block of the blob. */
export interface BlockSink {
  stageBlock(bytes: Uint8Array): Promise<void>;
}

export interface ParquetFileOptions {
  /** Columns in contract order, from contract/schemas.ts (`columnsFor(fileType, version)`). */
  columns: readonly Column[];
  sink: BlockSink;
  /** Rows buffered before a row group is encoded (default 50_000; a group is also cut by bytes). */
  rowGroupRows?: number;
  /** Approximate uncompressed bytes buffered before a row group is encoded (default 32 MiB). */
  rowGroupBytes?: number;
  /** Encoded bytes accumulated before a block is handed to the sink (default 8 MiB). */
  blockBytes?: number;
  /**
   * Default SNAPPY. GZIP uses node:zlib; ZSTD needs node:zlib's zstd (Node >= 22.15) and is
   * refused where it is missing (see `codecAvailable`).
   */
  codec?: ParquetCodec;
  kvMetadata?: { key: string; value: string }[];
  /** Column chunk statistics (min/max/null count) in the footer. Default true. */
  statistics?: boolean;
  /** Target uncompressed size of a data page (default 1 MiB). */
  pageBytes?: number;
  /**
   * SNAPPY-compress big row groups (>= 512 KiB of pages) on a worker thread while the next row
   * group is buffered (default true). The file is byte for byte the same either way.
   */
  compressInWorker?: boolean;
}

export type Row = Record<string, unknown>;

/** A column's values for writeColumns(): by row, or a string column's UTF-8 bytes. */
export type ColumnValues = ArrayLike<unknown> | Utf8Values;

const isUtf8 = (values: ColumnValues): values is Utf8Values => (values as Utf8Values).utf8 === true;

export interface ParquetFileResult {
  rows: number;
  /** Size of the whole file in bytes (= sum of the staged blocks). */
  bytes: number;
  rowGroups: number;
  /** Blocks handed to the sink. */
  blocks: number;
}

export { codecAvailable };

export const DEFAULT_ROW_GROUP_ROWS = 50_000;
/** writeColumns() checks the row group's size limits every this many rows. */
const COLUMN_CHUNK_ROWS = 4096;
export const DEFAULT_ROW_GROUP_BYTES = 32 * 1024 * 1024;
export const DEFAULT_BLOCK_BYTES = 8 * 1024 * 1024;
/** Azure's limit for one staged block. */
const MAX_BLOCK_BYTES = 4000 * 1024 * 1024;
const MAGIC = new Uint8Array([0x50, 0x41, 0x52, 0x31]); // "PAR1"

export const DEFAULT_PAGE_BYTES = 1024 * 1024;
/** A string column chunk whose distinct values exceed this falls back from dictionary to PLAIN. */
const DICTIONARY_BYTES = 1024 * 1024;

const CREATED_BY = 'warehouse-export (own column encoder; footer by hyparquet-writer)';

type FileMetaData = Parameters<typeof writeMetadata>[1];

/** Row groups with fewer staged page bytes are compressed on the main thread. */
const WORKER_MIN_BYTES = 512 * 1024;

/** Frames pages on the main thread (small row groups, codecs other than SNAPPY, no worker). */
const framer = createPageFramer(createSnappy());

const CODEC_ID: Record<ParquetCodec, number> = { UNCOMPRESSED: 0, SNAPPY: 1, GZIP: 2, ZSTD: 2 };

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
// Block output: the file's bytes, cut into blocks of exactly blockBytes (the last one shorter) that
// are handed to the sink in order, one at a time.

class BlockOutput {
  private chain: Promise<void> = Promise.resolve();
  private buf: Uint8Array;
  private index = 0;
  offset = 0;
  blocks = 0;

  constructor(
    private readonly sink: BlockSink,
    private readonly blockBytes: number,
  ) {
    this.buf = new Uint8Array(Math.min(blockBytes, 1 << 20));
  }

  append(src: Uint8Array, start: number, end: number): void {
    this.offset += end - start;
    while (start < end) {
      if (this.index === this.blockBytes) this.cut();
      const n = Math.min(end - start, this.blockBytes - this.index);
      if (this.index + n > this.buf.length) {
        const next = new Uint8Array(Math.min(this.blockBytes, Math.max(this.buf.length * 2, this.index + n)));
        next.set(this.buf.subarray(0, this.index));
        this.buf = next;
      }
      if (n < 32) {
        const buf = this.buf;
        let i = this.index;
        for (let k = start; k < start + n; k++) buf[i++] = src[k];
      } else {
        this.buf.set(src.subarray(start, start + n), this.index);
      }
      this.index += n;
      start += n;
    }
  }

  /** Hands the buffered bytes to the sink as one block (staged in order, one at a time). */
  private cut(): void {
    if (this.index === 0) return;
    const block = this.index === this.buf.length ? this.buf : this.buf.slice(0, this.index);
    if (block === this.buf) this.buf = new Uint8Array(this.buf.length);
    this.index = 0;
    this.blocks++;
    const sink = this.sink;
    this.chain = this.chain.then(() => sink.stageBlock(block));
    // Mark as handled: the failure reaches the caller through flush()/finish(), which return the chain.
    this.chain.catch(() => {});
  }

  /** After each row group: stage a full block, wait for the sink. */
  flush(): Promise<void> {
    if (this.index === this.blockBytes) this.cut();
    return this.chain;
  }

  /** End of file: stage the remainder. */
  finish(): Promise<void> {
    this.cut();
    return this.chain;
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
 * Memory: the buffered group's column buffers (≤ rowGroupRows rows / ~rowGroupBytes), the staged
 * pages of at most one more group being framed, and one block; blocks wait for the sink one at a
 * time (awaiting write() keeps what waits for the sink to one group's).
 */
export class ParquetFileWriter {
  private readonly buffers: ColumnBuffer[];
  private readonly names: string[];
  private readonly schema: SchemaElement[];
  private readonly out: BlockOutput;
  private readonly rowGroupRows: number;
  private readonly rowGroupBytes: number;
  private readonly encodeOptions: EncodeOptions;
  private readonly stage = new Staging();
  private readonly compressInWorker: boolean;
  /** The last row group being framed in the worker, appended and staged to the sink. */
  private inflight: Promise<void> | undefined;
  private inflightBytes = 0;
  private readonly kvMetadata: { key: string; value: string }[] | undefined;
  private readonly rowGroupMeta: FileMetaData['row_groups'] = [];

  /** Approximate size of the rows of the last writeColumns() chunk. */
  private rowBytes = 1;
  private groupRows = 0;
  private groupBytes = 0;
  private totalRows = 0;
  private state: 'open' | 'finished' | 'failed' = 'open';
  private failure: unknown;

  constructor(opts: ParquetFileOptions) {
    this.schema = parquetSchema(opts.columns);
    this.rowGroupRows = positiveInt('rowGroupRows', opts.rowGroupRows, DEFAULT_ROW_GROUP_ROWS);
    this.rowGroupBytes = positiveInt('rowGroupBytes', opts.rowGroupBytes, DEFAULT_ROW_GROUP_BYTES);
    const blockBytes = positiveInt('blockBytes', opts.blockBytes, DEFAULT_BLOCK_BYTES, MAX_BLOCK_BYTES / 2);
    const pageBytes = positiveInt('pageBytes', opts.pageBytes, DEFAULT_PAGE_BYTES, 256 * 1024 * 1024);
    const codec = opts.codec ?? 'SNAPPY';
    if (!['SNAPPY', 'UNCOMPRESSED', 'GZIP', 'ZSTD'].includes(codec)) {
      throw new Error(`parquet: unsupported codec ${String(codec)}`);
    }
    if (!codecAvailable(codec)) throw new Error(`parquet: codec ${codec} is not available on Node.js ${process.version}`);
    this.encodeOptions = { codec, statistics: opts.statistics ?? true, pageBytes, dictionaryBytes: DICTIONARY_BYTES };
    this.kvMetadata = opts.kvMetadata;
    this.compressInWorker = (opts.compressInWorker ?? true) && codec === 'SNAPPY';
    // started now, it is ready (and primed) by the time the first row group is
    if (this.compressInWorker) framingWorker.warm();
    const capacity = Math.min(this.rowGroupRows, 65_536);
    this.buffers = opts.columns.map((c) => columnBuffer(c, capacity));
    this.names = opts.columns.map((c) => c.name);
    this.out = new BlockOutput(opts.sink, blockBytes);
    this.out.append(MAGIC, 0, 4);
  }

  /** Rows written so far (including the buffered group). */
  get rows(): number {
    return this.totalRows;
  }

  /** Encoded bytes so far plus the approximate uncompressed size of the buffered group. */
  get approxBytes(): number {
    return this.out.offset + this.inflightBytes + this.groupBytes;
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
        bytes += buffers[i].push(row[names[i]], rowIndex);
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

  /**
   * Writes `length` rows given by column: `columns[name][i]` is row i's value (a string column may
   * be given as its UTF-8 bytes, Utf8Values; in a Float64Array, NaN is null, as source segments store
   * numbers), and a column absent from `columns` is null in every row. The same rows as write() of each row, without row objects
   * (the export's source segments are stored by column). Row groups are cut between chunks of at
   * most COLUMN_CHUNK_ROWS rows, fewer when rows are big (sized by the previous chunk's rows). A value a column cannot hold throws and fails the writer (unlike
   * write(), whose rejected row leaves it usable): the rows come from validated storage, not a caller.
   * Await the result, as for write().
   */
  async writeColumns(columns: Readonly<Record<string, ColumnValues>>, length: number): Promise<void> {
    if (this.state !== 'open') this.throwState('writeColumns');
    const buffers = this.buffers;
    const values = this.names.map((name) => columns[name]);
    for (let from = 0; from < length; ) {
      // Rows that still fit the group's byte limit at the size of rows so far (big rows: a few at a time).
      const fit = Math.max(1, Math.floor((this.rowGroupBytes - this.groupBytes) / this.rowBytes));
      const to = Math.min(length, from + COLUMN_CHUNK_ROWS, from + this.rowGroupRows - this.groupRows, from + fit);
      let bytes = 0;
      try {
        for (let c = 0; c < buffers.length; c++) {
          const buffer = buffers[c];
          const column = values[c];
          let rowIndex = this.totalRows;
          if (column === undefined) for (let i = from; i < to; i++) bytes += buffer.push(null, rowIndex++);
          else if (isUtf8(column)) bytes += buffer.pushUtf8(column, from, to, rowIndex);
          else if (column instanceof Float64Array) bytes += buffer.pushFloat64(column, from, to, rowIndex);
          else for (let i = from; i < to; i++) bytes += buffer.push(column[i], rowIndex++);
        }
      } catch (err) {
        this.fail(err);
        throw err;
      }
      this.groupRows += to - from;
      this.groupBytes += bytes;
      this.rowBytes = Math.max(1, bytes / (to - from));
      this.totalRows += to - from;
      from = to;
      if (this.groupRows >= this.rowGroupRows || this.groupBytes >= this.rowGroupBytes) await this.flushGroup();
    }
  }

  /**
   * Encodes the buffered rows as one row group. Small groups are framed and appended at once, and
   * the returned promise resolves once the sink took the full blocks. A big SNAPPY group is
   * framed in the worker while the caller goes on buffering the next one: the returned promise
   * then is the previous group's (appended, sink done), so one group at most is in flight.
   */
  private flushGroup(): Promise<void> {
    const n = this.groupRows;
    const stage = this.stage;
    let staged: StagedChunk[];
    try {
      stage.reset();
      staged = this.buffers.map((b) => b.encode(stage, this.encodeOptions));
    } catch (err) {
      this.fail(err);
      return Promise.reject(err);
    } finally {
      this.groupRows = 0;
      this.groupBytes = 0;
    }
    const count = stage.count;
    const length = stage.pos;
    const prev = this.inflight;
    const inWorker = this.compressInWorker && length >= WORKER_MIN_BYTES && framingWorker.usable;
    if (!prev && !inWorker) {
      // at once, on this thread
      try {
        this.appendGroup(staged, stage.pages, this.frameHere(stage.buf, stage.pages, count), n);
      } catch (err) {
        this.fail(err);
        return Promise.reject(err);
      }
      return this.track(this.out.flush());
    }
    const pages = stage.pages.slice(0, count * PAGE_FIELDS);
    const input = stage.takeBuffer();
    this.inflightBytes += length;
    let job: Promise<void>;
    let framed: Promise<Framed> | undefined;
    if (inWorker) {
      try {
        framed = framingWorker.frameSnappy(input, length, pages, count);
      } catch {
        // no worker thread to be had: frame here (framingWorker.usable is now false)
      }
    }
    if (framed) {
      job = Promise.all([framed, prev]).then(([f]) => {
        this.inflightBytes -= length;
        this.appendGroup(staged, pages, f, n);
        return this.out.flush();
      });
    } else {
      // after the previous group, framed and appended in one go (the framer's buffer is shared)
      job = Promise.resolve(prev).then(() => {
        this.inflightBytes -= length;
        this.appendGroup(staged, pages, this.frameHere(input, pages, count), n);
        return this.out.flush();
      });
    }
    const tracked = this.track(job);
    this.inflight = tracked;
    void tracked.then(
      () => {
        if (this.inflight === tracked) this.inflight = undefined;
      },
      () => {},
    );
    return prev ?? Promise.resolve();
  }

  /** A failure of `p` fails the writer; a caller that does not await learns of it from the next call. */
  private track(p: Promise<void>): Promise<void> {
    const tracked = p.then(undefined, (err: unknown) => {
      this.fail(err);
      throw err;
    });
    tracked.catch(() => {});
    return tracked;
  }

  /** Frames staged pages on this thread (the framer's output buffer is valid until its next use). */
  private frameHere(input: Uint8Array, pages: Int32Array, count: number): Framed {
    const codec = this.encodeOptions.codec;
    const sizes = new Int32Array(2 * count);
    const { out, length } = framer.framePages(input, pages, count, CODEC_ID[codec], bodyCompressor(codec), sizes);
    return { bytes: out.subarray(0, length), sizes };
  }

  /** Appends a framed row group to the file and records its metadata. */
  private appendGroup(staged: StagedChunk[], pages: Int32Array, framed: Framed, rows: number): void {
    const { bytes, sizes } = framed;
    const start = this.out.offset;
    const count = sizes.length / 2;
    const offsets = new Float64Array(count);
    let offset = start;
    for (let i = 0; i < count; i++) {
      offsets[i] = offset;
      offset += sizes[2 * i] + sizes[2 * i + 1];
    }
    let uncompressed = 0n;
    const columns: ChunkMeta[] = staged.map((c) => {
      const chunk = stagedChunkMeta(c, { pages }, sizes, offsets, this.encodeOptions);
      uncompressed += chunk.meta_data.total_uncompressed_size;
      return chunk;
    });
    this.rowGroupMeta.push({
      columns: columns as FileMetaData['row_groups'][number]['columns'],
      total_byte_size: uncompressed,
      num_rows: BigInt(rows),
      file_offset: BigInt(start),
      total_compressed_size: BigInt(bytes.length),
    });
    this.out.append(bytes, 0, bytes.length);
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
      if (this.inflight) await this.inflight;
      await this.out.flush();
      const footer = new ByteWriter(4096);
      const metadata = {
        version: 1,
        created_by: CREATED_BY,
        schema: this.schema,
        num_rows: BigInt(this.totalRows),
        row_groups: this.rowGroupMeta,
        key_value_metadata: this.kvMetadata,
      } as FileMetaData;
      writeMetadata(footer, metadata);
      const bytes = footer.getBytes();
      this.out.append(bytes, 0, bytes.length);
      this.out.append(MAGIC, 0, 4);
      await this.out.finish();
    } catch (err) {
      this.fail(err);
      throw err;
    }
    this.state = 'finished';
    return { rows: this.totalRows, bytes: this.out.offset, rowGroups: this.rowGroupMeta.length, blocks: this.out.blocks };
  }
}
