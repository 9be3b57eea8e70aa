// Composition root: the lib objects the functions use, built once per process from the validated config.
import { loadConfig, type Config } from './platform/config.js';
import { appStorage, type AppStorage } from './platform/storage.js';
import { SourceLog } from './source/source-log.js';
import { PeopleState } from './source/people-state.js';
import { Ingest } from './source/ingest.js';
import { Integrations } from './integration/settings.js';
import { Cursors } from './export/cursors.js';
import { Exporter } from './export/job.js';
import type { Logger } from './platform/log.js';
import { systemClock, type Clock } from './platform/clock.js';
import { TABLES } from './platform/storage.js';
import { decryptSecret, encryptSecret } from './integration/crypto.js';
import { ConfigError, isConflict, isNotFound } from './platform/errors.js';

export interface Services {
  config: Config;
  storage: AppStorage;
  source: SourceLog;
  people: PeopleState;
  ingest: Ingest;
  integrations: Integrations;
  cursors: Cursors;
  clock: Clock;
  exporter(log?: Logger): Exporter;
}

export function createServices(config: Config, clock: Clock = systemClock): Services {
  const storage = appStorage(config.storage, config.exportQueueName, config.storagePrefix);
  const source = new SourceLog(storage);
  const people = new PeopleState(storage, source);
  const integrations = new Integrations(storage, config.sasEncryptionKey, clock);
  const cursors = new Cursors(storage);
  return {
    config,
    storage,
    source,
    people,
    ingest: new Ingest(source, people, clock),
    integrations,
    cursors,
    clock,
    exporter: (log) => new Exporter({ config, storage, source, people, integrations, cursors, clock, log }),
  };
}

let services: Services | undefined;
let clockOverride: Clock | undefined;

/** Test seam: the clock the process's services use (set before the first request). */
export function useClock(clock: Clock): void {
  clockOverride = clock;
  services = undefined;
}

/** The process's services; the config is validated on first use (start-up), naming any bad setting. */
export async function getServices(): Promise<Services> {
  if (!services) {
    const created = createServices(loadConfig(), clockOverride);
    await created.storage.ready();
    await checkEncryptionKey(created);
    services = created;
  }
  return services;
}

const KEY_CHECK = { partitionKey: '_keycheck', rowKey: 'SAS_ENCRYPTION_KEY' };
const KEY_CHECK_TEXT = 'warehouse-export key check';

/**
 * A wrong SAS_ENCRYPTION_KEY must stop the app before it touches any integration: a known text
 * encrypted with the first key is kept next to the settings and must decrypt with the current one.
 */
export async function checkEncryptionKey(s: Pick<Services, 'storage' | 'config'>): Promise<void> {
  const table = s.storage.table(TABLES.integrations);
  let stored: string | undefined;
  try {
    stored = String((await table.getEntity<{ value: string }>(KEY_CHECK.partitionKey, KEY_CHECK.rowKey)).value);
  } catch (e) {
    if (!isNotFound(e)) throw e;
    await table.createEntity({ ...KEY_CHECK, value: encryptSecret(KEY_CHECK_TEXT, s.config.sasEncryptionKey) }).catch((err) => {
      if (!isConflict(err)) throw err;
    });
    return;
  }
  let plain: string | undefined;
  try {
    plain = decryptSecret(stored, s.config.sasEncryptionKey);
  } catch {
    plain = undefined;
  }
  if (plain !== KEY_CHECK_TEXT) {
    throw new ConfigError('SAS_ENCRYPTION_KEY', 'is not the key the stored SAS URLs were encrypted with; set the original key (stored SAS URLs cannot be read without it)');
  }
}

/** Config at module load, so a bad setting stops the app at start-up with the setting's name. */
export function startupConfig(): Config {
  return loadConfig();
}
