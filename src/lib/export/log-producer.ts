// Files cut from the source log, in sequence order: pass 1 picks which version of each key the
// file carries (at most one row per primary key per file) and where the file ends, holding only
// keys; pass 2 streams exactly those rows to the writer.
import { SCHEMAS, type FileType, type SchemaVersion } from '../contract/schemas.js';
import type { Row } from '../parquet/writer.js';
import type { SourceLog, SourceRecord } from '../source/source-log.js';
import { anonymizeRow, type Anonymizer } from './anonymize.js';
import { approxSize, type FileLimits, type Producer } from './rows.js';

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
  /** Fault seam: after pass 1. */
  afterSourceRead?(): void | Promise<void>;
}

export function logProducer(source: SourceLog, limits: FileLimits, range: LogRange, options: LogProducerOptions): Producer {
  const schema = SCHEMAS[range.fileType];
  const keyOf = (r: SourceRecord) => schema.primaryKey.map((k) => String(r[k])).join('\u0000');
  const since = range.since;
  const keep = since === undefined ? undefined : (r: SourceRecord) => (r.timestamp as number) >= since;
  const withSeq = options.version === 'v4' && schema.columns.some((c) => c.name === 'seq_num');
  const { workspaceId, fileType, after } = range;
  return async (write) => {
    const anonymize = options.anonymize;
    const plan = await planFile(source, limits, range, keyOf, keep, anonymize?.column);
    await options.afterSourceRead?.();
    if (plan.latest.size === 0) return { rows: 0, end: plan.end };
    // The owners of this file's rows only: bounded by the file, whatever the number of deleted people.
    const anonymized = anonymize && (await anonymize.resolve(new Set(plan.owners.values())));
    let rows = 0;
    for await (const { seq, record } of source.read(workspaceId, fileType, after, plan.end)) {
      if (plan.latest.get(keyOf(record)) !== seq) continue; // an older version of a key this file carries
      if (keep && !keep(record)) continue;
      // The record is this pass's own (parsed for it): extend it in place, so rows share a shape (faster to encode).
      const row: Row = record;
      row.workspace_id = workspaceId;
      if (withSeq) row.seq_num = seq;
      if (anonymized?.size) anonymizeRow(row, anonymize!.column, anonymized);
      await write(row);
      rows++;
    }
    return { rows, end: plan.end };
  };
}

/** Pass 1: the sequence of the version of each key the file carries, its owner (in `ownerColumn`), and where the file ends. */
async function planFile(source: SourceLog, limits: FileLimits, range: LogRange, keyOf: (r: SourceRecord) => string, keep?: (r: SourceRecord) => boolean, ownerColumn?: string) {
  const latest = new Map<string, number>();
  const owners = new Map<string, string>();
  let end = range.after;
  let bytes = 0;
  for await (const { seq, record } of source.read(range.workspaceId, range.fileType, range.after, range.target)) {
    if (!keep || keep(record)) {
      const key = keyOf(record);
      const size = approxSize(record);
      if (!latest.has(key) && latest.size > 0 && (latest.size >= limits.maxRowsPerFile || bytes + size > limits.maxBytesPerFile)) break;
      latest.set(key, seq);
      const owner = ownerColumn === undefined ? undefined : record[ownerColumn];
      if (typeof owner === 'string') owners.set(key, owner);
      else owners.delete(key);
      bytes += size;
    }
    end = seq;
  }
  if (latest.size === 0) end = range.target;
  return { latest, owners, end };
}
