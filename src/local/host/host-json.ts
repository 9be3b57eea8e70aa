// host.json, read and validated once at start-up into the settings the host runs with (queue
// listener, functionTimeout, HTTP routePrefix), with the defaults the real host applies.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

export interface QueuesHostJson {
  batchSize?: number;
  newBatchThreshold?: number;
  /** TimeSpan "hh:mm:ss[.fff]" or milliseconds. */
  maxPollingInterval?: string | number;
  visibilityTimeout?: string | number;
  maxDequeueCount?: number;
  messageEncoding?: 'base64' | 'none';
}

export interface HostJson {
  version?: string;
  functionTimeout?: string;
  extensions?: { queues?: QueuesHostJson; http?: { routePrefix?: string } };
  [key: string]: unknown;
}

export interface QueueSettings {
  batchSize: number;
  newBatchThreshold: number;
  maxPollingIntervalMs: number;
  visibilityTimeoutMs: number;
  maxDequeueCount: number;
  messageEncoding: 'base64' | 'none';
}

export interface HostConfig {
  hostJson: HostJson;
  queues: QueueSettings;
  functionTimeoutMs: number | undefined;
  /** Without leading or trailing slashes; "" serves functions at the root. */
  routePrefix: string;
}

const QUEUE_DEFAULTS = {
  batchSize: 16,
  maxPollingIntervalMs: 60_000,
  visibilityTimeoutMs: 0,
  maxDequeueCount: 5,
  messageEncoding: 'base64' as 'base64' | 'none',
};

/** "hh:mm:ss[.fff]", "d.hh:mm:ss" or a number of milliseconds → milliseconds. */
export function parseTimeSpan(value: string | number, what: string): number {
  if (typeof value === 'number') return value;
  const m = /^(?:(\d+)\.)?(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,7}))?$/.exec(value.trim());
  if (!m) throw new Error(`host.json: ${what} "${value}" is not a TimeSpan (hh:mm:ss[.fff])`);
  const [, d, h, min, s, frac] = m;
  const fraction = frac ? Number(`0.${frac}`) : 0;
  return (((Number(d ?? 0) * 24 + Number(h)) * 60 + Number(min)) * 60 + Number(s) + fraction) * 1000;
}

/** host.json path or contents (default `./host.json` if it exists) → validated settings. */
export function readHostConfig(option: string | HostJson | undefined): HostConfig {
  const hostJson = loadHostJson(option);
  const queues = queueSettings(hostJson);
  const functionTimeoutMs = hostJson.functionTimeout ? parseTimeSpan(hostJson.functionTimeout, 'functionTimeout') : undefined;
  const routePrefix = (hostJson.extensions?.http?.routePrefix ?? 'api').replace(/^\/+|\/+$/g, '');
  return { hostJson, queues, functionTimeoutMs, routePrefix };
}

function loadHostJson(option: string | HostJson | undefined): HostJson {
  if (option && typeof option === 'object') return option;
  const file = option ?? path.resolve('host.json');
  if (!option && !existsSync(file)) return {};
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as HostJson;
  } catch (e) {
    throw new Error(`host.json: cannot read ${file}: ${(e as Error).message}`);
  }
}

function queueSettings(hostJson: HostJson): QueueSettings {
  const q = hostJson.extensions?.queues ?? {};
  const batchSize = q.batchSize ?? QUEUE_DEFAULTS.batchSize;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 32) {
    throw new Error(`host.json: extensions.queues.batchSize must be 1-32, got ${batchSize}`);
  }
  const encoding = q.messageEncoding ?? QUEUE_DEFAULTS.messageEncoding;
  if (encoding !== 'base64' && encoding !== 'none') {
    throw new Error(`host.json: extensions.queues.messageEncoding must be "base64" or "none", got "${encoding}"`);
  }
  return {
    batchSize,
    newBatchThreshold: q.newBatchThreshold ?? Math.floor(batchSize / 2),
    maxPollingIntervalMs:
      q.maxPollingInterval === undefined
        ? QUEUE_DEFAULTS.maxPollingIntervalMs
        : parseTimeSpan(q.maxPollingInterval, 'extensions.queues.maxPollingInterval'),
    visibilityTimeoutMs:
      q.visibilityTimeout === undefined
        ? QUEUE_DEFAULTS.visibilityTimeoutMs
        : parseTimeSpan(q.visibilityTimeout, 'extensions.queues.visibilityTimeout'),
    maxDequeueCount: q.maxDequeueCount ?? QUEUE_DEFAULTS.maxDequeueCount,
    messageEncoding: encoding,
  };
}
