// What a producer hands the file writer: rows in file order, and where in the run the file ends.
import type { ColumnValues, Row } from '../parquet/writer.js';

export { approxSize } from '../source/segment.js';

/** Where a producer's rows go: one at a time, or many at once by column (see ParquetFileWriter.writeColumns). */
export interface RowSink {
  row(row: Row): Promise<void> | void;
  columns(columns: Readonly<Record<string, ColumnValues>>, length: number): Promise<void>;
}

/**
 * Rows of one file: each goes to `out`; the answer says how many and how far into the run the
 * file reaches (a source sequence for log runs, a person key for snapshots).
 */
export type Producer = (out: RowSink) => Promise<{ rows: number; end: number | string }>;

/** File limits (EXPORT_MAX_ROWS_PER_FILE, EXPORT_MAX_BYTES_PER_FILE). */
export interface FileLimits {
  maxRowsPerFile: number;
  maxBytesPerFile: number;
}
