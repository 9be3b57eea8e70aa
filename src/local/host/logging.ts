// Log records of the local host: one shape for the host's own lines, the app's context.log lines
// (with their structured fields) and the @azure/functions library's system lines, sent to one sink.
import { format } from 'node:util';
import type { CoreLogLevel } from '../functions-core.js';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'critical';

/** One log line; the default sink writes it to stdout as JSON. */
export interface LogRecord {
  timestamp: string;
  level: LogLevel;
  /** `user` = context.log & co., `host` = this host, `system` = the @azure/functions library. */
  category: 'user' | 'host' | 'system';
  function?: string;
  invocationId?: string;
  message: string;
  /** Structured fields of the app's log lines (workspaceId, fileType, sequence, ...). */
  [field: string]: unknown;
}

export type LogSink = (record: LogRecord) => void;

/** Writes one `host` record. */
export type HostLog = (level: LogLevel, message: string, extra?: Partial<LogRecord>) => void;

/** The worker's log levels → ours; `none` is not logged. */
export const LEVELS: Record<CoreLogLevel, LogLevel | undefined> = {
  trace: 'trace',
  debug: 'debug',
  information: 'info',
  warning: 'warn',
  error: 'error',
  critical: 'critical',
  none: undefined,
};

/** Fields every line shows in its own place (or, for the invocation id, not at all) rather than as key=value. */
const PLACED = new Set(['timestamp', 'level', 'category', 'function', 'invocationId', 'message']);
const COLORS: Partial<Record<LogLevel, string>> = { warn: '\x1b[33m', error: '\x1b[31m', critical: '\x1b[31m', debug: '\x1b[90m', trace: '\x1b[90m' };

const fieldText = (v: unknown): string => {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? Number(x) : x)) ?? String(v);
};

/**
 * One record as a short line for a person at a terminal, as `func start` prints:
 * `14:48:55.459 exportWorker  export file written  workspaceId=1 fileType=events sequence=1`.
 * Warnings and errors say so (and are coloured when `color` is on).
 */
export function formatRecord(record: LogRecord, options: { color?: boolean } = {}): string {
  const time = /T(\d\d:\d\d:\d\d(?:\.\d+)?)/.exec(record.timestamp)?.[1] ?? record.timestamp;
  const fields = Object.entries(record)
    .filter(([k, v]) => !PLACED.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${fieldText(v)}`);
  const level = record.level === 'info' ? '' : `${record.level.toUpperCase()} `;
  const source = record.function ?? (record.category === 'user' ? 'app' : record.category);
  const line = `${time} ${source}  ${level}${record.message}${fields.length ? `  ${fields.join(' ')}` : ''}`;
  const color = options.color ? COLORS[record.level] : undefined;
  return color ? `${color}${line}\x1b[0m` : line;
}

/** The line a record becomes on this stream: human on a terminal, one JSON object otherwise (files, pipes, tests). */
export function recordLine(record: LogRecord, stream: { isTTY?: boolean }, env: Record<string, string | undefined> = process.env): string {
  return stream.isTTY ? formatRecord(record, { color: !env.NO_COLOR }) : JSON.stringify(record);
}

/** stdout: human lines when it is a terminal (`npm start`), JSON when captured or redirected. */
export const defaultSink: LogSink = (record) => {
  process.stdout.write(recordLine(record, process.stdout) + '\n');
};

/** The host's own log and the library's system log (without its trace and debug lines). */
export function hostLogs(sink: LogSink): { log: HostLog; systemLog: (level: CoreLogLevel, message: string) => void } {
  const log: HostLog = (level, message, extra = {}) => {
    sink({ timestamp: new Date().toISOString(), level, category: 'host', message, ...extra });
  };
  const systemLog = (level: CoreLogLevel, message: string): void => {
    const mapped = LEVELS[level];
    if (mapped && mapped !== 'trace' && mapped !== 'debug') {
      sink({ timestamp: new Date().toISOString(), level: mapped, category: 'system', message });
    }
  };
  return { log, systemLog };
}

/** A message that is one JSON object (the app's structured logs) becomes the record's fields. */
export function structured(message: string): { message: string } & Record<string, unknown> {
  if (message.startsWith('{') && message.endsWith('}')) {
    try {
      const parsed = JSON.parse(message) as Record<string, unknown>;
      if (parsed && typeof parsed.message === 'string') return parsed as { message: string } & Record<string, unknown>;
    } catch {
      // not JSON: a plain message
    }
  }
  return { message };
}

export function errorText(e: unknown): string {
  return e instanceof Error ? (e.stack ?? `${e.name}: ${e.message}`) : format(e);
}
