// The encoder's view of a column: name, logical type, nullability. The app's column table
// (contract/schemas.ts) has the same shape, so the encoder needs nothing of the app.

/** INTEGER = INT64, STRING = BYTE_ARRAY UTF8, BOOLEAN, TIMESTAMP = INT64 TIMESTAMP(MILLIS, UTC). */
export type ColumnType = 'INTEGER' | 'STRING' | 'BOOLEAN' | 'TIMESTAMP';

export interface Column {
  readonly name: string;
  readonly type: ColumnType;
  readonly required: boolean;
}

/**
 * A string column as UTF-8 bytes, which writeColumns takes without a JS string per value: value i is
 * bytes[offsets[i], offsets[i + 1]), or null where nulls[i] is 1. `value(i)` gives it as a string.
 */
export interface Utf8Values {
  readonly utf8: true;
  readonly length: number;
  readonly bytes: Uint8Array;
  readonly offsets: Int32Array;
  readonly nulls: Uint8Array;
  value(i: number): string | null;
}
