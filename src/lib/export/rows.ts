// What a producer hands the file writer: rows in file order, and where in the run the file ends.
import type { ColumnValues, Row } from '../parquet/writer.js';

export { approxSize } from '../source/segment.js';

/** Where a producer's rows go: one at a time, or many at once by column (see ParquetFileWriter.writeColumns). */
export interface RowSink {
  row(row: Row): Promise<void> | void;
  columns(columns: Readonly<Record<string, ColumnValues>>, length: number): Promise<void>;
}

/** What a producer made of one file. */
export interface Produced {
  rows: number;
  /** How far into the run the file reaches (a source sequence for log runs, a person key for snapshots). */
  end: number | string;
  /** The file reaches the run's target: nothing is left for another file (log runs; a snapshot does not know). */
  complete?: boolean;
  /** When the oldest change the file carries was committed (ms; log runs). */
  oldestCommit?: number;
}

/** Rows of one file: each goes to `out`. */
export type Producer = (out: RowSink) => Promise<Produced>;

/** File limits (EXPORT_MAX_ROWS_PER_FILE, EXPORT_MAX_BYTES_PER_FILE). */
export interface FileLimits {
  maxRowsPerFile: number;
  maxBytesPerFile: number;
}
