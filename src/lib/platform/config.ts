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
import { AZURE_LIMITS } from './azure-limits.js';

/** Export files go to the customer's container as staged blocks of this size (the last one smaller). */
export const EXPORT_BLOCK_BYTES = 8 * 1024 * 1024;
/**
 * A blob holds at most 50,000 blocks: 390 GiB of 8 MiB blocks. EXPORT_MAX_BYTES_PER_FILE is checked
 * on an estimate that a file can outgrow (one more row, encoding), so it may be at most half of that.
 */
export const MAX_EXPORT_FILE_BYTES = (AZURE_LIMITS.blocksPerBlob * EXPORT_BLOCK_BYTES) / 2;

export interface Config {
  /** The app's own storage account (queues, tables, source log): a connection string or an identity-based connection. */
  storage: StorageConnection;
  /** NCRONTAB, six fields. */
  exportSchedule: string;
  exportQueueName: string;
  /** Prepended to the app's table and container names (several deployments or test suites in one account). */
  storagePrefix: string;
  /** 32-byte AES-256-GCM key for SAS URLs at rest: every write uses it. */
  sasEncryptionKey: Buffer;
  /** Earlier keys, for reading SAS URLs not yet re-encrypted under the current one (key rotation). */
  sasEncryptionKeysPrevious: Buffer[];
  /** The storage emulator's loopback SAS URLs are accepted (local runs only; deployed: false). */
  allowEmulatorSasUrls: boolean;
  /** HMAC-SHA256 key of workspace-scoped owner tokens; without it the owner routes refuse everything. */
  workspaceTokenKey?: Buffer;
  /** Container probes (validate, PUT) per workspace per window. */
  probeLimit: number;
  probeWindowMs: number;
  maxRowsPerFile: number;
  maxBytesPerFile: number;
  /** Work an export invocation does before it hands the rest to a continuation message. */
  timeBudgetMs: number;
  /** How long an export holds its pair's lease; a crashed worker's lease expires after this. */
  leaseMs: number;
  /** Memory a people writer keeps of the state between its requests, over all workspaces (people-recent.ts). */
  peopleStateMemoryBytes: number;
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
  const key = base64Key('SAS_ENCRYPTION_KEY', keyText, 'must be exactly 32 bytes, base64-encoded', (n) => n === 32);
  const previous = (env.SAS_ENCRYPTION_KEYS_PREVIOUS ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter(Boolean)
    .map((k, i) => base64Key('SAS_ENCRYPTION_KEYS_PREVIOUS', k, `entry ${i + 1} must be exactly 32 bytes, base64-encoded (a comma-separated list of earlier SAS_ENCRYPTION_KEY values)`, (n) => n === 32))
    .filter((k) => !k.equals(key));
  const tokenKeyText = env.WORKSPACE_TOKEN_SIGNING_KEY?.trim();
  const workspaceTokenKey = tokenKeyText
    ? base64Key('WORKSPACE_TOKEN_SIGNING_KEY', tokenKeyText, 'must be at least 32 bytes, base64-encoded (generate one with `openssl rand -base64 32`)', (n) => n >= 32)
    : undefined;
  const emulator = env.ALLOW_EMULATOR_SAS_URLS?.trim().toLowerCase() ?? '';
  if (!['', 'true', 'false'].includes(emulator)) {
    throw new ConfigError('ALLOW_EMULATOR_SAS_URLS', `must be "true" (local runs against the storage emulator only) or "false", got "${env.ALLOW_EMULATOR_SAS_URLS}"`);
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
      PROBE_RATE_LIMIT: positiveInt('PROBE_RATE_LIMIT', 20),
      PROBE_RATE_WINDOW_SECONDS: positiveInt('PROBE_RATE_WINDOW_SECONDS', 3600),
      PEOPLE_STATE_MEMORY_MB: positiveInt('PEOPLE_STATE_MEMORY_MB', 64),
    })
    .safeParse(env);
  if (!limits.success) {
    const issue = limits.error.issues[0];
    throw new ConfigError(String(issue.path[0]), issue.message);
  }
  const l = limits.data;
  if (l.EXPORT_MAX_BYTES_PER_FILE > MAX_EXPORT_FILE_BYTES) {
    throw new ConfigError('EXPORT_MAX_BYTES_PER_FILE', `must be at most ${MAX_EXPORT_FILE_BYTES}: a file is written as blocks of ${EXPORT_BLOCK_BYTES} bytes and an Azure blob holds at most ${AZURE_LIMITS.blocksPerBlob} blocks`);
  }
  return {
    storage,
    exportSchedule,
    exportQueueName: env.EXPORT_QUEUE_NAME || 'export-jobs',
    storagePrefix: env.STORAGE_PREFIX ?? '',
    sasEncryptionKey: key,
    sasEncryptionKeysPrevious: previous,
    allowEmulatorSasUrls: emulator === 'true',
    workspaceTokenKey,
    probeLimit: l.PROBE_RATE_LIMIT,
    probeWindowMs: l.PROBE_RATE_WINDOW_SECONDS * 1000,
    maxRowsPerFile: l.EXPORT_MAX_ROWS_PER_FILE,
    maxBytesPerFile: l.EXPORT_MAX_BYTES_PER_FILE,
    timeBudgetMs: l.EXPORT_TIME_BUDGET_SECONDS * 1000,
    leaseMs: l.EXPORT_LEASE_SECONDS * 1000,
    peopleStateMemoryBytes: l.PEOPLE_STATE_MEMORY_MB * 1024 * 1024,
  };
}

function base64Key(setting: string, text: string, rule: string, lengthOk: (n: number) => boolean): Buffer {
  const key = Buffer.from(text, 'base64');
  if (!lengthOk(key.length) || key.toString('base64') !== text.trim()) throw new ConfigError(setting, rule);
  return key;
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
