// A RowSink that keeps what a producer hands over as row objects. Rows handed over by column become
// objects without their null columns (a column absent from the call is null in every row; a column
// given as UTF-8 bytes becomes strings).
import type { Row } from '../../src/lib/parquet/writer.js';
import type { RowSink } from '../../src/lib/export/rows.js';

export function collectRows(): RowSink & { rows: Row[] } {
  const rows: Row[] = [];
  return {
    rows,
    row: (row) => void rows.push({ ...row }),
    async columns(columns, length) {
      for (let i = 0; i < length; i++) {
        const row: Row = {};
        for (const [name, values] of Object.entries(columns)) {
          // as the writer reads them: UTF-8 bytes, and NaN for null in a Float64Array
          const value = 'utf8' in values ? values.value(i) : values instanceof Float64Array && Number.isNaN(values[i]) ? null : values[i];
          if (value !== null && value !== undefined) row[name] = value;
        }
        rows.push(row);
      }
    },
  };
}
