// Files cut from the source log, in sequence order, in one read of the rows: the plan reads only the
// segments' plan sections (keys, owners, event times, sizes) to pick which version of each key the
// file carries (at most one row per primary key per file) and where the file ends; the write then
// reads each segment once and hands the picked rows to the writer by column.
import { SCHEMAS, type FileType, type SchemaVersion } from '../contract/schemas.js';
import type { SegmentRef, SourceLog } from '../source/source-log.js';
import type { SegmentBatch, Utf8Column, Values } from '../source/segment.js';
import { KeyIndex, keyReader } from './key-index.js';
import { anonymizeColumns, type Anonymizer } from './anonymize.js';
import type { FileLimits, Producer } from './rows.js';

export interface LogRange {
  workspaceId: number;
  fileType: FileType;
  /** Exported through this sequence; the file starts after it. */
  after: number;
  target: number;
  /** Events initial sync: only records at or after this time. */
  since?: number;
}

export interface LogProducerOptions {
  version: SchemaVersion;
  /** Anonymization of this file type's generation (see anonymize.ts). */
  anonymize?: Anonymizer;
  /** Fault seam: after the plan read. */
  afterSourceRead?(): void | Promise<void>;
}

type Columns = Record<string, Values | Utf8Column>;

/**
 * Bytes of source segments a plan keeps for its write (per export): half for segments read whole,
 * half for plan sections (the write then downloads only the rest of those). Beyond it, the write
 * reads segments whole again.
 */
const HOLD_BYTES = 16 * 1024 * 1024;
/** A segment whose plan section is at least 1/WHOLE_RATIO of it is read whole by the plan. */
const WHOLE_RATIO = 4;

export function logProducer(source: SourceLog, limits: FileLimits, range: LogRange, options: LogProducerOptions): Producer {
  const schema = SCHEMAS[range.fileType];
  const keyOf = keyReader(schema.primaryKey);
  const withSeq = options.version === 'v4' && schema.columns.some((c) => c.name === 'seq_num');
  const { workspaceId, fileType, after } = range;
  return async (out) => {
    // Nobody gone in the workspace (the usual case): no owners to collect and resolve.
    const anonymize = options.anonymize && (await options.anonymize.anyGone()) ? options.anonymize : undefined;
    const plan = await planFile(source, limits, range, keyOf, anonymize?.column);
    await options.afterSourceRead?.();
    if (plan.rows === 0) return { rows: 0, end: plan.end, complete: true };
    // The owners of this file's rows only: bounded by the file, whatever the number of deleted people.
    const anonymized = anonymize && (await anonymize.resolve(plan.owners));
    const inWindow = windowOf(range.since);
    let rows = 0;
    // What the plan read is not downloaded again (and released as it is used).
    const held = (firstSeq: number) => {
      const batch = plan.held.get(firstSeq);
      plan.held.delete(firstSeq);
      return batch;
    };
    // As stored: strings as their UTF-8 bytes (the writer decodes a range at once), numbers as float64.
    // The segments the plan listed (the write covers the same range): the index is not listed again.
    const read = { decode: { asStored: true }, plan: held, segments: plan.segments };
    for await (const { firstSeq, batch, start, end } of source.slices(workspaceId, fileType, after, plan.end, 'all', read)) {
      // Every record in range but the versions a later one replaced, and those outside the events window
      // (without either, and the whole segment in range: all of them, nothing to pick).
      const every = plan.superseded.size === 0 && range.since === undefined && start === 0 && end === batch.rows;
      let picked: number[] | undefined;
      if (!every) {
        const time = batch.columns.timestamp;
        picked = [];
        for (let i = start; i < end; i++) if (!plan.superseded.has(firstSeq + i) && inWindow(time, i)) picked.push(i);
        if (picked.length === 0) continue;
        if (picked.length === batch.rows) picked = undefined;
      }
      const length = picked?.length ?? batch.rows;
      const columns: Columns = { workspace_id: new Float64Array(length).fill(workspaceId) };
      for (const name in batch.columns) {
        const values = batch.columns[name];
        if (name === 'workspace_id' || name === 'seq_num') continue;
        // numbers stay a Float64Array (NaN: null, as stored)
        columns[name] = !picked ? values : values instanceof Float64Array ? pickFloat64(values, picked) : picked.map((i) => values[i]);
      }
      for (const name in batch.utf8) {
        const values = batch.utf8[name];
        if (name !== 'workspace_id' && name !== 'seq_num') columns[name] = picked ? values.pick(picked) : values;
      }
      if (withSeq) {
        const seq = new Float64Array(length);
        for (let j = 0; j < length; j++) seq[j] = firstSeq + (picked ? picked[j] : j);
        columns.seq_num = seq;
      }
      if (anonymized?.size) anonymizeColumns(columns, anonymize!.column, anonymized);
      await out.columns(columns, length);
      rows += length;
    }
    return { rows, end: plan.end, complete: plan.end >= range.target, oldestCommit: plan.oldestCommit };
  };
}

/** values[i] for each i picked, in order (a loop: Float64Array.from iterates, an object per value). */
function pickFloat64(values: Float64Array, picked: readonly number[]): Float64Array {
  const out = new Float64Array(picked.length);
  for (let j = 0; j < picked.length; j++) out[j] = values[picked[j]];
  return out;
}

/** Whether record i is in the events window (no window: every record). */
function windowOf(since: number | undefined): (time: Values | undefined, i: number) => boolean {
  if (since === undefined) return () => true;
  return (time, i) => typeof time?.[i] === 'number' && (time[i] as number) >= since;
}

/**
 * The plan, from the segments' plan sections: where the file ends (its row and byte limits), the
 * sequences of the versions a later version in the file replaces (a file carries each key once), and
 * the owners of its rows (in `ownerColumn`; possibly some of replaced versions too, which only costs a lookup).
 * Keys are compared by their bytes as stored (key-index.ts): no string per row.
 */
async function planFile(source: SourceLog, limits: FileLimits, range: LogRange, keyOf: ReturnType<typeof keyReader>, ownerColumn?: string) {
  const keys = new KeyIndex();
  const superseded = new Set<number>();
  const owners = new Set<string>();
  const inWindow = windowOf(range.since);
  let end = range.after;
  let bytes = 0;
  // What the plan reads is kept for the write (HOLD_BYTES): segments of small rows are read whole
  // (the plan section is a good part of them: one request instead of two), and the write reads
  // only the rest of those read by their plan section.
  const held = new Map<number, SegmentBatch>();
  const segments: SegmentRef[] = [];
  let heldBytes = 0;
  let wholeBytes = 0;
  const whole = ({ bytes, planBytes }: { bytes: number; planBytes: number }) => {
    if (planBytes * WHOLE_RATIO < bytes || wholeBytes + bytes > HOLD_BYTES / 2) return false;
    wholeBytes += bytes;
    return true;
  };
  read: for await (const { segment, firstSeq, batch, start, end: stop } of source.slices(range.workspaceId, range.fileType, range.after, range.target, 'plan', { decode: { asStored: true }, whole })) {
    segments.push(segment);
    const planSection = batch.whole ? 0 : (batch.planBytes ?? Infinity);
    if (heldBytes + planSection <= HOLD_BYTES / 2) {
      held.set(firstSeq, batch);
      heldBytes += planSection;
    }
    const { columns, size } = batch;
    const time = columns.timestamp;
    const key = keyOf(batch);
    const owner = ownerColumn === undefined ? undefined : ownerOf(batch, ownerColumn);
    for (let i = start; i < stop; i++) {
      if (inWindow(time, i)) {
        const { bytes: b, from, to } = key(i);
        const k = keys.lookup(b, from, to);
        if (k < 0) {
          if (keys.size > 0 && (keys.size >= limits.maxRowsPerFile || bytes + size[i] > limits.maxBytesPerFile)) break read;
          keys.add(b, from, to, firstSeq + i);
        } else {
          superseded.add(keys.replace(k, firstSeq + i));
        }
        const id = owner?.(i);
        if (typeof id === 'string') owners.add(id);
        bytes += size[i];
      }
      end = firstSeq + i;
    }
  }
  if (keys.size === 0) end = range.target;
  // The file's oldest change: the first segment after the file's start (for the file's lag).
  return { rows: keys.size, superseded, owners, end, held, segments, oldestCommit: segments[0]?.committedAt };
}

/** Record i's owner, from the column as decoded (a string only for the rows asked). */
function ownerOf(batch: SegmentBatch, column: string): (i: number) => unknown {
  const utf8 = batch.utf8?.[column];
  if (utf8) return (i) => utf8.value(i);
  const values = batch.columns[column];
  return (i) => values?.[i];
}
