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

export const defaultSink: LogSink = (record) => {
  process.stdout.write(JSON.stringify(record) + '\n');
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
