// The encoder's view of a column: name, logical type, nullability. The app's column table
// (contract/schemas.ts) has the same shape, so the encoder needs nothing of the app.

/** INTEGER = INT64, STRING = BYTE_ARRAY UTF8, BOOLEAN, TIMESTAMP = INT64 TIMESTAMP(MILLIS, UTC). */
export type ColumnType = 'INTEGER' | 'STRING' | 'BOOLEAN' | 'TIMESTAMP';

export interface Column {
  readonly name: string;
  readonly type: ColumnType;
  readonly required: boolean;
}
