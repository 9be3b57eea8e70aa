// The app itself on the in-process local Functions host, against the test Azurite, on its own tables and queue.
import { inject } from 'vitest';
import { fileURLToPath } from 'node:url';
import { startHost, type Host, type LogRecord } from '../../src/local/host.js';
import { TEST_KEY, TEST_PREFIX } from './env.js';

export interface AppHostOptions {
  /** Export queue name (unique per test file). */
  queue: string;
  maxDequeueCount?: number;
  log?: (record: LogRecord) => void;
  /** Extra app settings. */
  settings?: Record<string, string>;
}

/** Sets the app settings (the app reads them at start-up) and starts the host on a free port. */
export async function startAppHost(options: AppHostOptions): Promise<Host> {
  Object.assign(process.env, {
    AzureWebJobsStorage: inject('storageConnectionString'),
    SAS_ENCRYPTION_KEY: TEST_KEY,
    ALLOW_EMULATOR_SAS_URLS: 'true', // the customer containers are on Azurite (path-style loopback URLs)
    STORAGE_PREFIX: TEST_PREFIX,
    EXPORT_QUEUE_NAME: options.queue,
    EXPORT_SCHEDULE: '0 0 0 1 1 *', // the tests tick the timer themselves
    ...options.settings,
  });
  return startHost({
    entry: fileURLToPath(new URL('../../src/index.ts', import.meta.url)),
    port: 0,
    hostJson: {
      version: '2.0',
      extensions: { queues: { batchSize: 8, maxPollingInterval: '00:00:00.200', visibilityTimeout: '00:00:00', maxDequeueCount: options.maxDequeueCount ?? 5 } },
    },
    log: options.log ?? (() => undefined),
  });
}
