// platform/: what every layer stands on and nothing of the product: settings (this file), the app's
// own storage clients, errors, clock, structured logs, telemetry, HTTP helpers and redaction. It
// imports nothing else of src/lib (test/lib/layers.test.ts).
//
// Settings are read and validated once, at start-up, into a typed object.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { storageConnection, type StorageConnection } from './storage.js';

export interface Config {
  /** The app's own storage account (queues, tables, source log): a connection string or an identity-based connection. */
  storage: StorageConnection;
  /** NCRONTAB, six fields. */
  exportSchedule: string;
  exportQueueName: string;
  /** Prepended to the app's table and container names (several deployments or test suites in one account). */
  storagePrefix: string;
  /** 32-byte AES-256-GCM key for SAS URLs at rest. */
  sasEncryptionKey: Buffer;
  maxRowsPerFile: number;
  maxBytesPerFile: number;
  /** Work an export invocation does before it hands the rest to a continuation message. */
  timeBudgetMs: number;
  /** How long an export holds its pair's lease; a crashed worker's lease expires after this. */
  leaseMs: number;
}

const positiveInt = (setting: string, fallback: number) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return fallback;
      const n = Number(v);
      if (!Number.isSafeInteger(n) || n <= 0) {
        ctx.addIssue({ code: 'custom', message: `${setting} must be a positive integer, got "${v}"` });
        return z.NEVER;
      }
      return n;
    });

const NCRONTAB = /^\s*\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+\S+\s*$/;

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const storage = storageConnection(env);
  const exportSchedule = env.EXPORT_SCHEDULE || '0 */15 * * * *';
  if (!NCRONTAB.test(exportSchedule)) {
    throw new ConfigError('EXPORT_SCHEDULE', `must be a six-field NCRONTAB expression like "0 */15 * * * *", got "${exportSchedule}"`);
  }
  const keyText = env.SAS_ENCRYPTION_KEY;
  if (!keyText) throw new ConfigError('SAS_ENCRYPTION_KEY', 'is not set: a base64-encoded 32-byte key that encrypts stored SAS URLs (generate one with `openssl rand -base64 32`)');
  const key = Buffer.from(keyText, 'base64');
  if (key.length !== 32 || key.toString('base64') !== keyText.trim()) {
    throw new ConfigError('SAS_ENCRYPTION_KEY', 'must be exactly 32 bytes, base64-encoded');
  }
  if (env.STORAGE_PREFIX && !/^[a-z][a-z0-9]{0,11}$/.test(env.STORAGE_PREFIX)) {
    throw new ConfigError('STORAGE_PREFIX', 'must be 1-12 lowercase letters or digits, starting with a letter (it prefixes table and container names)');
  }
  if (env.EXPORT_QUEUE_NAME && !/^[a-z0-9](?!.*--)[a-z0-9-]{1,54}[a-z0-9]$/.test(env.EXPORT_QUEUE_NAME)) {
    throw new ConfigError('EXPORT_QUEUE_NAME', 'must be a valid queue name: 3-56 lowercase letters, digits and single hyphens (the poison queue adds "-poison")');
  }
  const limits = z
    .object({
      EXPORT_MAX_ROWS_PER_FILE: positiveInt('EXPORT_MAX_ROWS_PER_FILE', 250_000),
      EXPORT_MAX_BYTES_PER_FILE: positiveInt('EXPORT_MAX_BYTES_PER_FILE', 512 * 1024 * 1024),
      EXPORT_TIME_BUDGET_SECONDS: positiveInt('EXPORT_TIME_BUDGET_SECONDS', 300),
      EXPORT_LEASE_SECONDS: positiveInt('EXPORT_LEASE_SECONDS', 540),
    })
    .safeParse(env);
  if (!limits.success) {
    const issue = limits.error.issues[0];
    throw new ConfigError(String(issue.path[0]), issue.message);
  }
  const l = limits.data;
  return {
    storage,
    exportSchedule,
    exportQueueName: env.EXPORT_QUEUE_NAME || 'export-jobs',
    storagePrefix: env.STORAGE_PREFIX ?? '',
    sasEncryptionKey: key,
    maxRowsPerFile: l.EXPORT_MAX_ROWS_PER_FILE,
    maxBytesPerFile: l.EXPORT_MAX_BYTES_PER_FILE,
    timeBudgetMs: l.EXPORT_TIME_BUDGET_SECONDS * 1000,
    leaseMs: l.EXPORT_LEASE_SECONDS * 1000,
  };
}

/**
 * The queue trigger's maxDequeueCount from host.json (the Functions host reads the same file), so
 * the worker knows a failure on the last attempt sends the message to the poison queue.
 */
let dequeueCount: number | undefined;
export function maxDequeueCount(hostJsonPath = path.join(process.cwd(), 'host.json')): number {
  return (dequeueCount ??= readMaxDequeueCount(hostJsonPath));
}

function readMaxDequeueCount(hostJsonPath: string): number {
  try {
    const n = JSON.parse(readFileSync(hostJsonPath, 'utf8'))?.extensions?.queues?.maxDequeueCount;
    return Number.isInteger(n) && n > 0 ? n : 5;
  } catch {
    return 5; // the Functions default
  }
}
