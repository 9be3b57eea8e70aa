// Structured logs: one JSON object per line (message + correlation fields), through the Functions
// context so they reach Application Insights as traces of the invocation. Every line is redacted:
// no SAS signature can reach a log, whatever a caller passes.
import { redact } from './redaction.js';

export type LogFields = Record<string, unknown>;

export interface Logger {
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** A logger that adds these fields to every line. */
  with(fields: LogFields): Logger;
}

interface LogTarget {
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

export function structuredLine(message: string, fields: LogFields): string {
  const line = JSON.stringify({ message, ...fields }, (_k, v) => (typeof v === 'bigint' ? Number(v) : v === undefined ? undefined : v));
  return redact(line);
}

export function createLogger(target: LogTarget, base: LogFields = {}): Logger {
  const emit = (level: 'info' | 'warn' | 'error') => (message: string, fields: LogFields = {}) => target[level](structuredLine(message, { ...base, ...fields }));
  return { info: emit('info'), warn: emit('warn'), error: emit('error'), with: (fields) => createLogger(target, { ...base, ...fields }) };
}
