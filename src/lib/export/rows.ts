// What a producer hands the file writer: rows in file order, and where in the run the file ends.
import type { Row } from '../parquet/writer.js';
import type { SourceRecord } from '../source/source-log.js';

export type WriteRow = (row: Row) => Promise<void> | void;

/**
 * Rows of one file: each goes to `write`; the answer says how many and how far into the run the
 * file reaches (a source sequence for log runs, a person key for snapshots).
 */
export type Producer = (write: WriteRow) => Promise<{ rows: number; end: number | string }>;

/** File limits (EXPORT_MAX_ROWS_PER_FILE, EXPORT_MAX_BYTES_PER_FILE). */
export interface FileLimits {
  maxRowsPerFile: number;
  maxBytesPerFile: number;
}

/** A cheap estimate of a row's encoded size, for the per-file byte limit. */
export function approxSize(record: SourceRecord): number {
  let n = 16;
  for (const v of Object.values(record)) n += typeof v === 'string' ? v.length + 8 : 9;
  return n;
}
