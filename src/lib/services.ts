// Composition root: the lib objects the functions use, built once per process from the validated config.
import { loadConfig, type Config } from './platform/config.js';
import { appStorage, type AppStorage } from './platform/storage.js';
import { SourceLog } from './source/source-log.js';
import { PeopleState } from './source/people-state.js';
import { DeliveryOwners } from './source/delivery-owners.js';
import { Ingest } from './source/ingest.js';
import { IdempotencyKeys } from './source/idempotency.js';
import { Integrations } from './integration/settings.js';
import { Cursors } from './export/cursors.js';
import { Exporter } from './export/job.js';
import type { Logger } from './platform/log.js';
import { systemClock, type Clock } from './platform/clock.js';
import type { SasKeys } from './integration/crypto.js';
import { SasKeyRotation } from './integration/key-rotation.js';
import { probeContainer } from './integration/settings.js';
import { FixedWindowLimiter } from './platform/rate-limit.js';

export interface Services {
  config: Config;
  storage: AppStorage;
  source: SourceLog;
  people: PeopleState;
  deliveryOwners: DeliveryOwners;
  ingest: Ingest;
  integrations: Integrations;
  cursors: Cursors;
  clock: Clock;
  keyRotation: SasKeyRotation;
  exporter(log?: Logger): Exporter;
}

export const sasKeys = (config: Config): SasKeys => ({ current: config.sasEncryptionKey, previous: config.sasEncryptionKeysPrevious });

export function createServices(config: Config, clock: Clock = systemClock): Services {
  const storage = appStorage(config.storage, config.exportQueueName, config.storagePrefix);
  const source = new SourceLog(storage);
  const people = new PeopleState(storage, source, config.peopleStateMemoryBytes);
  const deliveryOwners = new DeliveryOwners(storage, source);
  // Probes of customer containers (validate, PUT) are rate-limited per workspace: the app is no scanner.
  const probes = new FixedWindowLimiter(storage, clock, { name: 'probe', limit: config.probeLimit, windowMs: config.probeWindowMs, what: 'container checks (validate and PUT)', setting: 'PROBE_RATE_LIMIT' });
  const probe = async (sasUrl: string, blobPath: string, workspaceId: number) => {
    await probes.take(workspaceId);
    await probeContainer(sasUrl, blobPath);
  };
  const integrations = new Integrations(storage, sasKeys(config), clock, probe, { allowEmulator: config.allowEmulatorSasUrls });
  const cursors = new Cursors(storage);
  return {
    config,
    storage,
    source,
    people,
    deliveryOwners,
    ingest: new Ingest(source, people, clock, new IdempotencyKeys(storage, clock)),
    integrations,
    cursors,
    clock,
    keyRotation: new SasKeyRotation(storage, sasKeys(config)),
    exporter: (log) => new Exporter({ config, storage, source, people, deliveryOwners, integrations, cursors, clock, log }),
  };
}

let services: Services | undefined;
let clockOverride: Clock | undefined;

/** Test seam: the clock the process's services use (set before the first request). */
export function useClock(clock: Clock): void {
  clockOverride = clock;
  services = undefined;
}

/** Test seam: app settings changed (key rotation); the next request reads them and checks the keys again. */
export function reloadServices(): void {
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

/** A wrong SAS_ENCRYPTION_KEY (or a previous key removed too early) stops the app at start-up. */
export async function checkEncryptionKey(s: Pick<Services, 'storage' | 'config'>): Promise<void> {
  await new SasKeyRotation(s.storage, sasKeys(s.config)).checkKeys();
}

/** Config at module load, so a bad setting stops the app at start-up with the setting's name. */
export function startupConfig(): Config {
  return loadConfig();
}
