// Files cut from the source log, in sequence order, in one read of the rows: the plan reads only the
// segments' plan sections (keys, owners, event times, sizes) to pick which version of each key the
// file carries (at most one row per primary key per file) and where the file ends; the write then
// reads each segment once and hands the picked rows to the writer by column.
import { SCHEMAS, type FileType, type SchemaVersion } from '../contract/schemas.js';
import type { SourceLog } from '../source/source-log.js';
import type { Values } from '../source/segment.js';
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

type Columns = Record<string, Values>;

export function logProducer(source: SourceLog, limits: FileLimits, range: LogRange, options: LogProducerOptions): Producer {
  const schema = SCHEMAS[range.fileType];
  const keyOf = keyReader(schema.primaryKey);
  const withSeq = options.version === 'v4' && schema.columns.some((c) => c.name === 'seq_num');
  const { workspaceId, fileType, after } = range;
  return async (out) => {
    const anonymize = options.anonymize;
    const plan = await planFile(source, limits, range, keyOf, anonymize?.column);
    await options.afterSourceRead?.();
    if (plan.rows === 0) return { rows: 0, end: plan.end };
    // The owners of this file's rows only: bounded by the file, whatever the number of deleted people.
    const anonymized = anonymize && (await anonymize.resolve(plan.owners));
    const inWindow = windowOf(range.since);
    let rows = 0;
    for await (const { firstSeq, batch, start, end } of source.slices(workspaceId, fileType, after, plan.end, 'all')) {
      // Every record in range but the versions a later one replaced, and those outside the events window.
      const time = batch.columns.timestamp;
      const picked: number[] = [];
      for (let i = start; i < end; i++) if (!plan.superseded.has(firstSeq + i) && inWindow(time, i)) picked.push(i);
      if (picked.length === 0) continue;
      const all = picked.length === batch.rows;
      const columns: Columns = { workspace_id: new Array(picked.length).fill(workspaceId) };
      for (const name in batch.columns) {
        const values = batch.columns[name];
        if (name !== 'workspace_id' && name !== 'seq_num') columns[name] = all ? values : picked.map((i) => values[i]);
      }
      if (withSeq) columns.seq_num = picked.map((i) => firstSeq + i);
      if (anonymized?.size) anonymizeColumns(columns, anonymize!.column, anonymized);
      await out.columns(columns, picked.length);
      rows += picked.length;
    }
    return { rows, end: plan.end };
  };
}

/** Whether record i is in the events window (no window: every record). */
function windowOf(since: number | undefined): (time: Values | undefined, i: number) => boolean {
  if (since === undefined) return () => true;
  return (time, i) => typeof time?.[i] === 'number' && (time[i] as number) >= since;
}

/** A record's primary key as one string (the columns joined by NUL), from its segment's columns. */
function keyReader(primaryKey: readonly string[]): (columns: Columns, i: number) => string {
  if (primaryKey.length === 1) {
    const [name] = primaryKey;
    return (columns, i) => String(columns[name]?.[i]);
  }
  return (columns, i) => primaryKey.map((name) => String(columns[name]?.[i])).join('\u0000');
}

/**
 * The plan, from the segments' plan sections: where the file ends (its row and byte limits), the
 * sequences of the versions a later version in the file replaces (a file carries each key once), and
 * the owners of its rows (in `ownerColumn`; possibly some of replaced versions too, which only costs a lookup).
 */
async function planFile(source: SourceLog, limits: FileLimits, range: LogRange, keyOf: (columns: Columns, i: number) => string, ownerColumn?: string) {
  const latest = new Map<string, number>();
  const superseded = new Set<number>();
  const owners = new Set<string>();
  const inWindow = windowOf(range.since);
  let end = range.after;
  let bytes = 0;
  read: for await (const { firstSeq, batch, start, end: stop } of source.slices(range.workspaceId, range.fileType, range.after, range.target, 'plan')) {
    const { columns, size } = batch;
    const time = columns.timestamp;
    const owner = ownerColumn === undefined ? undefined : columns[ownerColumn];
    for (let i = start; i < stop; i++) {
      if (inWindow(time, i)) {
        const key = keyOf(columns, i);
        const earlier = latest.get(key);
        if (earlier === undefined && latest.size > 0 && (latest.size >= limits.maxRowsPerFile || bytes + size[i] > limits.maxBytesPerFile)) break read;
        if (earlier !== undefined) superseded.add(earlier);
        latest.set(key, firstSeq + i);
        if (typeof owner?.[i] === 'string') owners.add(owner[i] as string);
        bytes += size[i];
      }
      end = firstSeq + i;
    }
  }
  if (latest.size === 0) end = range.target;
  return { rows: latest.size, superseded, owners, end };
}
