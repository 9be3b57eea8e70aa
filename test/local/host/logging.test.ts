// Local log lines: short human lines at a terminal (as `func start` prints), one JSON object per line
// when stdout is captured (tests, files, Application Insights-like pipelines).
import { describe, expect, it } from 'vitest';
import { formatRecord, recordLine, type LogRecord } from '../../../src/local/host/logging.js';

const written: LogRecord = {
  timestamp: '2026-12-01T14:48:56.031Z',
  level: 'info',
  category: 'user',
  function: 'exportWorker',
  invocationId: 'fc58a245-3e37-48f5-8d4b-c65317c4fbea',
  message: 'export file written',
  workspaceId: 692333001,
  fileType: 'events',
  file: 'events_v4_692333001_00000000000000000001.parquet',
  sequence: 1,
  rows: 2,
};

describe('formatRecord', () => {
  it('time, function, message, then the structured fields as key=value', () => {
    expect(formatRecord(written)).toBe(
      '14:48:56.031 exportWorker  export file written  workspaceId=692333001 fileType=events file=events_v4_692333001_00000000000000000001.parquet sequence=1 rows=2',
    );
  });

  it('host lines without a function, levels other than info named, values with spaces or objects quoted', () => {
    expect(formatRecord({ timestamp: '2026-12-01T09:00:00.000Z', level: 'warn', category: 'host', message: 'binding not supported', binding: 'cosmosDB trigger', extra: { a: [1] } })).toBe(
      '09:00:00.000 host  WARN binding not supported  binding="cosmosDB trigger" extra={"a":[1]}',
    );
    expect(formatRecord({ timestamp: '2026-12-01T09:00:00.000Z', level: 'error', category: 'user', message: 'malformed export message' })).toBe('09:00:00.000 app  ERROR malformed export message');
  });

  it('colours warnings and errors only when asked', () => {
    const error: LogRecord = { timestamp: '2026-12-01T09:00:00.000Z', level: 'error', category: 'host', message: 'boom' };
    expect(formatRecord(error, { color: true })).toBe('\x1b[31m09:00:00.000 host  ERROR boom\x1b[0m');
    expect(formatRecord(written, { color: true })).not.toContain('\x1b[');
  });
});

describe('recordLine', () => {
  it('human on a terminal (coloured unless NO_COLOR), JSON otherwise', () => {
    expect(recordLine(written, { isTTY: true }, {})).toBe(formatRecord(written));
    expect(recordLine({ ...written, level: 'warn' }, { isTTY: true }, { NO_COLOR: '1' })).toBe(formatRecord({ ...written, level: 'warn' }));
    expect(recordLine({ ...written, level: 'warn' }, { isTTY: true }, {})).toContain('\x1b[33m');
    expect(JSON.parse(recordLine(written, { isTTY: false }, {}))).toEqual(written);
    expect(JSON.parse(recordLine(written, {}, {}))).toEqual(written);
  });
});
