// Composition root: the lib objects the functions use, built once per process from the validated config.
import { loadConfig, type Config } from './config.js';
import { appStorage, type AppStorage } from './storage.js';
import { SourceLog } from './source.js';
import { PeopleState } from './people-state.js';
import { Ingest } from './ingest.js';
import { Integrations } from './integration.js';
import { Cursors } from './cursors.js';
import { Exporter, type ExportLogger } from './export.js';
import { systemClock, type Clock } from './clock.js';

export interface Services {
  config: Config;
  storage: AppStorage;
  source: SourceLog;
  people: PeopleState;
  ingest: Ingest;
  integrations: Integrations;
  cursors: Cursors;
  clock: Clock;
  exporter(log?: ExportLogger): Exporter;
}

export function createServices(config: Config, clock: Clock = systemClock): Services {
  const storage = appStorage(config.storageConnectionString, config.exportQueueName);
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
  services ??= createServices(loadConfig(), clockOverride);
  await services.storage.ready();
  return services;
}

/** Config at module load, so a bad setting stops the app at start-up with the setting's name. */
export function startupConfig(): Config {
  return loadConfig();
}
