// A source segment as stored: the records of one append, by column, in two sections of one blob:
// the plan section (what the export needs to plan a file: the primary key, the owner for
// anonymization, the event time of events' initial window, and each record's approximate size for
// the byte limit), then every other column. The export reads the plan section alone, as a range read
// of the segment's first `planBytes` bytes (kept in the index entity), and the whole segment once,
// to write the file.
//
// A section is binary, so reading it costs little more than copying it:
//   u32 LE length of the header │ header JSON {"v":2,"n":<records>,"cols":[[name, kind, bytes], …]} │ the columns' bytes
// kinds: "f" numbers as float64 (NaN = null), "b" booleans as bytes (0, 1, 2 = null), "a" ASCII
// strings and "s" other strings as int32 byte lengths (−1 = null) followed by the values' UTF-8 bytes
// (short ASCII values: one decode per column, then a slice per value; others one by one), "j"
// anything else as a JSON array. bench/segment.ts measures it
// against JSON records (the format of earlier versions) and JSON columns.
//
// Segments of earlier versions are a JSON array of records (no planBytes in their index entity):
// still read, by converting them to columns.
import { ownerColumn, SCHEMAS, type FileType } from '../contract/schemas.js';
import type { Utf8Values } from '../parquet/columns.js';

/** A record as ingested: column values by name (timestamps as epoch ms), without workspace_id and seq_num. */
export type SourceRecord = Record<string, unknown>;

/** A column's values by record: an array, or a Float64Array for a number column without nulls. */
export type Values = { length: number; [i: number]: unknown };

/** A segment's records by column. */
export interface SegmentBatch {
  rows: number;
  /** approxSize() of each record. */
  size: ArrayLike<number>;
  /** Values by column name; a column absent here is null in every record. Only the plan columns for a plan read. */
  columns: Record<string, Values>;
  /** Decoded `asStored`: the string columns, as UTF-8 bytes (not in `columns`). */
  utf8?: Record<string, Utf8Column>;
  /** The length of the segment's plan section (absent for an earlier version's segment). */
  planBytes?: number;
  /** Every column is here: the whole segment was read, not only its plan section. */
  whole?: boolean;
}

/**
 * How a segment is decoded. `asStored`: as the writer takes them, without a JS value per record —
 * UTF-8 string columns as their bytes (Utf8Column, in `utf8`), number columns as Float64Arrays with
 * NaN for null (even with nulls; otherwise a Float64Array only without).
 */
export interface DecodeOptions {
  asStored?: boolean;
}

/**
 * A string column as stored: value i is the UTF-8 bytes [offsets[i], offsets[i + 1]) of `bytes`, or
 * null where `nulls[i]` is 1. Reading it creates no string (value() does, for the few that need one).
 */
export class Utf8Column implements Utf8Values {
  readonly utf8 = true;

  constructor(
    readonly bytes: Buffer,
    readonly offsets: Int32Array,
    /** Writable: anonymization nulls a value by setting its flag. */
    readonly nulls: Uint8Array,
  ) {}

  /** The values of the given records, in that order, as a column of their own. */
  pick(records: readonly number[]): Utf8Column {
    const n = records.length;
    let size = 0;
    for (const i of records) size += this.offsets[i + 1] - this.offsets[i];
    const bytes = Buffer.allocUnsafe(size);
    const offsets = new Int32Array(n + 1);
    const nulls = new Uint8Array(n);
    let at = 0;
    for (let j = 0; j < n; j++) {
      const i = records[j];
      offsets[j] = at;
      nulls[j] = this.nulls[i];
      at += this.bytes.copy(bytes, at, this.offsets[i], this.offsets[i + 1]);
    }
    offsets[n] = at;
    return new Utf8Column(bytes, offsets, nulls);
  }

  get length(): number {
    return this.nulls.length;
  }

  value(i: number): string | null {
    return this.nulls[i] === 1 ? null : this.bytes.toString('utf8', this.offsets[i], this.offsets[i + 1]);
  }
}

export const SEGMENT_FORMAT = 2;
/** The plan section's column of record sizes. */
const SIZE_COLUMN = '#size';

/** The columns of a file type's plan section: primary key, owner, and the time events are windowed by. */
export function planColumns(fileType: FileType): readonly string[] {
  const columns = new Set(SCHEMAS[fileType].primaryKey);
  const owner = ownerColumn(fileType);
  if (owner) columns.add(owner);
  if (fileType === 'events') columns.add('timestamp');
  return [...columns];
}

/** A cheap estimate of a record's encoded size, for the per-file byte limit. */
export function approxSize(record: SourceRecord): number {
  let n = 16;
  for (const v of Object.values(record)) n += typeof v === 'string' ? v.length + 8 : 9;
  return n;
}

/** The records as a segment blob; `planBytes` is the length of its plan section. */
export function encodeSegment(fileType: FileType, records: readonly SourceRecord[]): { body: Buffer; planBytes: number } {
  const { rows, size, columns } = toColumns(records);
  const plan: Record<string, ArrayLike<unknown>> = { [SIZE_COLUMN]: size };
  for (const name of planColumns(fileType)) {
    if (columns[name]) plan[name] = columns[name];
    delete columns[name];
  }
  // One copy into the blob's buffer: the sections are kept as their parts until then.
  const head = encodeSection(rows, plan);
  const planBytes = head.reduce((n, part) => n + part.length, 0);
  return { body: Buffer.concat([...head, ...encodeSection(rows, columns)]), planBytes };
}

/**
 * A segment blob's records. `planBytes` undefined: a segment of an earlier version (a JSON array of
 * records). `buffer` may be only the plan section (a plan read); then only the plan columns are there.
 */
export function decodeSegment(buffer: Buffer, planBytes: number | undefined, options: DecodeOptions = {}): SegmentBatch {
  if (planBytes === undefined) return toColumns(JSON.parse(buffer.toString('utf8')) as SourceRecord[]);
  const utf8 = options.asStored ? {} : undefined;
  const section = decodeSection(buffer.subarray(0, planBytes), utf8);
  const size = section.columns[SIZE_COLUMN] as ArrayLike<number>;
  delete section.columns[SIZE_COLUMN];
  const plan: SegmentBatch = { rows: section.rows, size, columns: section.columns, planBytes, whole: false };
  if (utf8) plan.utf8 = utf8;
  return buffer.length > planBytes ? decodeRest(plan, buffer.subarray(planBytes), options) : plan;
}

/** A segment's records from its plan section (decoded alone, the same way) and the rest of its bytes. */
export function decodeRest(plan: SegmentBatch, rest: Buffer, options: DecodeOptions = {}): SegmentBatch {
  const utf8 = options.asStored ? { ...plan.utf8 } : undefined;
  const columns = { ...plan.columns, ...decodeSection(rest, utf8).columns };
  const { rows, size, planBytes } = plan;
  return utf8 ? { rows, size, columns, utf8, planBytes, whole: true } : { rows, size, columns, planBytes, whole: true };
}

/** Record `i` of a batch as an object: the segment's columns, null where the record had no value. */
export function recordAt(batch: SegmentBatch, i: number): SourceRecord {
  const record: SourceRecord = {};
  for (const name in batch.columns) record[name] = batch.columns[name][i] ?? null;
  return record;
}

type Kind = 'f' | 'b' | 'a' | 's' | 'j';

/** A section as the parts it is made of, in order. */
function encodeSection(rows: number, columns: Record<string, ArrayLike<unknown>>): Buffer[] {
  const parts: Buffer[] = [];
  const cols: [string, Kind, number][] = [];
  for (const [name, values] of Object.entries(columns)) {
    const [kind, bytes] = encodeColumn(values);
    cols.push([name, kind, bytes.length]);
    parts.push(bytes);
  }
  const header = Buffer.from(JSON.stringify({ v: SEGMENT_FORMAT, n: rows, cols }));
  const length = Buffer.alloc(4);
  length.writeUInt32LE(header.length);
  return [length, header, ...parts];
}

/** A section's columns; with `utf8` (decoding as stored), its UTF-8 string columns go there as Utf8Columns instead, and numbers stay float64. */
function decodeSection(buffer: Buffer, utf8?: Record<string, Utf8Column>): { rows: number; columns: Record<string, Values> } {
  const headerEnd = 4 + buffer.readUInt32LE(0);
  const header = JSON.parse(buffer.toString('utf8', 4, headerEnd)) as { v: number; n: number; cols: [string, Kind, number][] };
  if (header.v !== SEGMENT_FORMAT) throw new Error(`source segment format ${header.v} is not known to this version`);
  const columns: Record<string, Values> = {};
  let at = headerEnd;
  for (const [name, kind, bytes] of header.cols) {
    const part = buffer.subarray(at, at + bytes);
    if (utf8 && (kind === 'a' || kind === 's')) utf8[name] = utf8Column(part, header.n);
    else columns[name] = decodeColumn(kind, part, header.n, !!utf8);
    at += bytes;
  }
  return { rows: header.n, columns };
}

function encodeColumn(values: ArrayLike<unknown>): [Kind, Buffer] {
  const n = values.length;
  let numbers = true;
  let booleans = true;
  let strings = true;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v === null || v === undefined) continue;
    numbers &&= typeof v === 'number' && !Number.isNaN(v);
    booleans &&= typeof v === 'boolean';
    strings &&= typeof v === 'string';
  }
  if (numbers) {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = (values[i] as number | null) ?? NaN;
    return ['f', Buffer.from(out.buffer)];
  }
  if (booleans) {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = values[i] === true ? 1 : values[i] === false ? 0 : 2;
    return ['b', out];
  }
  if (strings) {
    const lengths = new Int32Array(n);
    const present: string[] = [];
    for (let i = 0; i < n; i++) {
      const v = values[i];
      lengths[i] = typeof v === 'string' ? v.length : -1;
      if (typeof v === 'string') present.push(v);
    }
    const joined = present.join('');
    const bytes = Buffer.from(joined, 'utf8');
    // ASCII: a byte per character, so the lengths are byte lengths too.
    if (bytes.length === joined.length) return ['a', Buffer.concat([Buffer.from(lengths.buffer), bytes])];
    // A lone surrogate does not survive UTF-8: such a column is kept as JSON (which escapes it).
    if (!LONE_SURROGATE.test(joined)) {
      for (let i = 0, at = 0; i < n; i++) if (lengths[i] >= 0) lengths[i] = Buffer.byteLength(present[at++], 'utf8');
      return ['s', Buffer.concat([Buffer.from(lengths.buffer), bytes])];
    }
  }
  return ['j', Buffer.from(JSON.stringify(Array.from(values, (v) => v ?? null)))];
}

/** A UTF-16 code unit of a surrogate pair without its other half (UTF-8 cannot carry it). */
export const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/** Average length from which string values are decoded one by one (a slice would keep the column's whole text alive). */
const SLICE_MAX_AVERAGE = 256;

/** `float64`: a number column as a Float64Array even with nulls (NaN). */
function decodeColumn(kind: Kind, bytes: Buffer, n: number, float64 = false): Values {
  if (kind === 'j') return JSON.parse(bytes.toString('utf8')) as unknown[];
  if (kind === 'f') {
    // Copied: a view needs an 8-byte-aligned offset, which a downloaded buffer need not have.
    const values = new Float64Array(n);
    Buffer.from(values.buffer).set(bytes.subarray(0, n * 8));
    // Without nulls, the typed array itself: no number is boxed until the writer reads it.
    if (float64 || !values.some(Number.isNaN)) return values;
    const out: unknown[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = Number.isNaN(values[i]) ? null : values[i];
    return out;
  }
  const out: unknown[] = new Array(n);
  if (kind === 'b') {
    for (let i = 0; i < n; i++) out[i] = bytes[i] === 2 ? null : bytes[i] === 1;
    return out;
  }
  const lengths = new Int32Array(n);
  Buffer.from(lengths.buffer).set(bytes.subarray(0, n * 4));
  const text = bytes.subarray(n * 4);
  if (kind === 'a' && text.length < SLICE_MAX_AVERAGE * n) {
    // One decode of the column, then a slice per value: the fast path (ids, names, types).
    const joined = text.toString('latin1');
    for (let i = 0, at = 0; i < n; i++) out[i] = lengths[i] < 0 ? null : joined.slice(at, (at += lengths[i]));
  } else {
    const encoding = kind === 'a' ? 'latin1' : 'utf8';
    for (let i = 0, at = 0; i < n; i++) out[i] = lengths[i] < 0 ? null : text.toString(encoding, at, (at += lengths[i]));
  }
  return out;
}

function utf8Column(bytes: Buffer, n: number): Utf8Column {
  const lengths = new Int32Array(n);
  Buffer.from(lengths.buffer).set(bytes.subarray(0, n * 4));
  const offsets = new Int32Array(n + 1);
  const nulls = new Uint8Array(n);
  let at = 0;
  for (let i = 0; i < n; i++) {
    offsets[i] = at;
    if (lengths[i] < 0) nulls[i] = 1;
    else at += lengths[i];
  }
  offsets[n] = at;
  return new Utf8Column(bytes.subarray(n * 4), offsets, nulls);
}

function toColumns(records: readonly SourceRecord[]): SegmentBatch {
  const n = records.length;
  const columns: Record<string, unknown[]> = {};
  const size: number[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const record = records[i];
    for (const name in record) {
      const v = record[name];
      if (v === undefined) continue;
      (columns[name] ??= new Array(n).fill(null))[i] = v;
    }
    size[i] = approxSize(record);
  }
  return { rows: n, size, columns };
}
