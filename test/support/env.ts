// Test wiring: the app's services on the test Azurite, isolated by a fresh export queue and workspace ids.
import { inject } from 'vitest';
import { loadConfig, type Config } from '../../src/lib/platform/config.js';
import { appStorage, type AppStorage } from '../../src/lib/platform/storage.js';
import { createServices, type Services } from '../../src/lib/services.js';

export const TEST_KEY = Buffer.alloc(32, 7).toString('base64');
/** Each test file (one process) gets its own tables, so one file's timer never exports another's workspaces. */
export const TEST_PREFIX = `t${Math.random().toString(36).slice(2, 10).replace(/[^a-z0-9]/g, 'x')}`;

let nextWorkspace = Math.floor(Math.random() * 1_000_000) * 1000 + 1;
/** A workspace id no other test uses. */
export const freshWorkspace = () => nextWorkspace++;

export function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig({
    AzureWebJobsStorage: inject('storageConnectionString'),
    SAS_ENCRYPTION_KEY: TEST_KEY,
    ALLOW_EMULATOR_SAS_URLS: 'true', // the customer containers are on Azurite (path-style loopback URLs)
    EXPORT_QUEUE_NAME: `jobs${Math.random().toString(36).slice(2, 10)}`,
    STORAGE_PREFIX: TEST_PREFIX,
    ...overrides,
  });
}

export async function testStorage(config: Config): Promise<AppStorage> {
  const storage = appStorage(config.storage, config.exportQueueName, config.storagePrefix);
  await storage.ready();
  return storage;
}

/** The app's services on the test Azurite, storage ready (for files that drive exporters themselves). */
export async function testServices(overrides: Record<string, string> = {}): Promise<Services> {
  const config = testConfig(overrides);
  await testStorage(config);
  return createServices(config);
}
