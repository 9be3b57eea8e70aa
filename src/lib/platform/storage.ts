// Clients for the app's own storage account (AzureWebJobsStorage): tables, the source-log container, the export queue.
// The account is reached the way the Functions host reaches it: by a connection string
// (`AzureWebJobsStorage`), or by identity (`AzureWebJobsStorage__accountName` or service URIs, a
// managed identity with data-plane roles), so a deployment needs no shared key.
import { TableClient, type TableEntityResult } from '@azure/data-tables';
import { DefaultAzureCredential, type TokenCredential } from '@azure/identity';
import { AnonymousCredential, BlobServiceClient, ContainerClient, newPipeline, type StoragePipelineOptions } from '@azure/storage-blob';
import { newPipeline as newQueuePipeline, QueueClient, QueueServiceClient } from '@azure/storage-queue';
import { messageSender, type MessageSender } from './queue-sender.js';
import { ConfigError } from './errors.js';
import { blobLimitsFactory, limitsStrict, queueLimitsFactory, tableLimitsOptions } from './azure-limits.js';

export const TABLES = {
  sourceIndex: 'sourceindex',
  peopleState: 'peoplestate',
  cursors: 'cursors',
  integrations: 'integrations',
  deliveryOwners: 'deliveryowners',
  gonePeople: 'gonepeople',
  rateLimits: 'ratelimits',
  pending: 'exportpending',
} as const;
export const SOURCE_CONTAINER = 'source-log';

/** How the app reaches its own storage account. */
export type StorageConnection =
  | { kind: 'connectionString'; connectionString: string }
  | {
      kind: 'identity';
      blobServiceUri: string;
      queueServiceUri: string;
      tableServiceUri: string;
      /** `managedidentity`: only the app's managed identity; unset: DefaultAzureCredential's chain (also az login locally). */
      credential?: 'managedidentity';
      /** Client id of a user-assigned managed identity. */
      clientId?: string;
    };

const SETTING = 'AzureWebJobsStorage';

/**
 * The app's storage connection from its settings, by the Functions host's rules for the
 * `AzureWebJobsStorage` connection: the setting itself is a connection string; otherwise
 * `AzureWebJobsStorage__accountName` (or `__blobServiceUri`, `__queueServiceUri` and
 * `__tableServiceUri`) make an identity-based connection, optionally `__credential=managedidentity`
 * with `__clientId` for a user-assigned identity. An error names the setting to fix.
 */
export function storageConnection(env: Record<string, string | undefined>): StorageConnection {
  const connectionString = env[SETTING];
  if (connectionString) return { kind: 'connectionString', connectionString };
  const value = (name: string) => env[`${SETTING}__${name}`] || undefined;
  const accountName = value('accountName');
  if (!accountName && !value('blobServiceUri') && !value('queueServiceUri') && !value('tableServiceUri')) {
    throw new ConfigError(
      SETTING,
      `is not set: the connection string of the app's own storage account, or ${SETTING}__accountName for an identity-based connection`,
    );
  }
  if (accountName !== undefined && !/^[a-z0-9]{3,24}$/.test(accountName)) {
    throw new ConfigError(`${SETTING}__accountName`, `must be a storage account name (3-24 lowercase letters and digits), got "${accountName}"`);
  }
  const uri = (service: 'blob' | 'queue' | 'table'): string => {
    const name = `${service}ServiceUri`;
    const text = value(name) ?? (accountName ? `https://${accountName}.${service}.core.windows.net` : undefined);
    if (!text) throw new ConfigError(`${SETTING}__${name}`, `is not set: without ${SETTING}__accountName every service URI (blob, queue, table) is needed`);
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new ConfigError(`${SETTING}__${name}`, `must be a URL like https://<account>.${service}.core.windows.net, got "${text}"`);
    }
    if (url.protocol !== 'https:') throw new ConfigError(`${SETTING}__${name}`, `must be an https URL (a token is never sent in clear), got "${text}"`);
    return text.replace(/\/+$/, '');
  };
  const credential = value('credential');
  const clientId = value('clientId');
  if (credential !== undefined && credential.toLowerCase() !== 'managedidentity') {
    throw new ConfigError(`${SETTING}__credential`, `must be "managedidentity" or unset, got "${credential}"`);
  }
  if (clientId !== undefined && credential === undefined) {
    throw new ConfigError(`${SETTING}__credential`, `must be "managedidentity" when ${SETTING}__clientId is set (a user-assigned identity)`);
  }
  return {
    kind: 'identity',
    blobServiceUri: uri('blob'),
    queueServiceUri: uri('queue'),
    tableServiceUri: uri('table'),
    ...(credential ? { credential: 'managedidentity' as const } : {}),
    ...(clientId ? { clientId } : {}),
  };
}

export interface AppStorage {
  /** A table of the app, by its logical name (the STORAGE_PREFIX setting is prepended). */
  table(name: (typeof TABLES)[keyof typeof TABLES]): TableClient;
  sourceContainer: ContainerClient;
  exportQueue: QueueClient;
  /** Put Message to the export queue without QueueClient's (de)serialization (queue-sender.ts): the fan-out's sends. */
  exportSender: MessageSender;
  /** Any queue of the app's account (the poison queue). */
  queue(name: string): QueueClient;
  /** Creates tables, container and queues once; safe to call from every invocation. */
  ready(): Promise<void>;
}

const cache = new Map<string, AppStorage>();

export function appStorage(connection: StorageConnection, exportQueueName: string, prefix = ''): AppStorage {
  const key = `${JSON.stringify(connection)}\u0000${exportQueueName}\u0000${prefix}`;
  let storage = cache.get(key);
  if (!storage) {
    storage = createAppStorage(connection, exportQueueName, prefix);
    cache.set(key, storage);
  }
  return storage;
}

interface Services {
  table(name: string): TableClient;
  blobs: BlobServiceClient;
  queue(name: string): QueueClient;
}

function connectionStringServices(connectionString: string): Services {
  const insecure = /DefaultEndpointsProtocol=http;|Endpoint=http:\/\//i.test(connectionString) || /UseDevelopmentStorage=true/i.test(connectionString);
  return {
    table: (name) => TableClient.fromConnectionString(connectionString, name, { allowInsecureConnection: insecure, ...tableLimitsOptions() }),
    blobs: strictBlobService(BlobServiceClient.fromConnectionString(connectionString)),
    queue: (name) => strictQueue(new QueueClient(connectionString, name)),
  };
}

function identityServices(c: Extract<StorageConnection, { kind: 'identity' }>): Services {
  const credential: TokenCredential = new DefaultAzureCredential(c.clientId ? { managedIdentityClientId: c.clientId } : {});
  const queues = new QueueServiceClient(c.queueServiceUri, queuePipeline(credential));
  return {
    table: (name) => new TableClient(c.tableServiceUri, name, credential, tableLimitsOptions()),
    blobs: new BlobServiceClient(c.blobServiceUri, blobPipeline(credential)),
    queue: (name) => queues.getQueueClient(name),
  };
}

function createAppStorage(connection: StorageConnection, exportQueueName: string, prefix: string): AppStorage {
  const services = connection.kind === 'connectionString' ? connectionStringServices(connection.connectionString) : identityServices(connection);
  const tables = new Map<string, TableClient>();
  const table = (name: string) => {
    let t = tables.get(name);
    if (!t) {
      t = services.table(`${prefix}${name}`);
      tables.set(name, t);
    }
    return t;
  };
  const sourceContainer = services.blobs.getContainerClient(`${prefix.toLowerCase()}${SOURCE_CONTAINER}`);
  const exportQueue = services.queue(exportQueueName);
  let readiness: Promise<void> | undefined;
  const ready = () => {
    readiness ??= (async () => {
      await Promise.all([
        ...Object.values(TABLES).map((n) => table(n).createTable()),
        sourceContainer.createIfNotExists(),
        exportQueue.createIfNotExists(),
        services.queue(`${exportQueueName}-poison`).createIfNotExists(),
      ]);
    })().catch((e) => {
      readiness = undefined;
      throw e;
    });
    return readiness;
  };
  return { table, sourceContainer, exportQueue, exportSender: messageSender(exportQueue), queue: services.queue, ready };
}

/** A blob pipeline; with AZURE_LIMITS_STRICT=1 it refuses what Azure would (see azure-limits.ts). */
function blobPipeline(credential: BlobServiceClient['credential'] | TokenCredential, options?: StoragePipelineOptions) {
  const pipeline = newPipeline(credential, options);
  if (limitsStrict()) pipeline.factories.push(blobLimitsFactory());
  return pipeline;
}

/** A queue pipeline; with AZURE_LIMITS_STRICT=1 it refuses what Azure would. */
function queuePipeline(credential: Parameters<typeof newQueuePipeline>[0]) {
  const pipeline = newQueuePipeline(credential);
  if (limitsStrict()) pipeline.factories.push(queueLimitsFactory());
  return pipeline;
}

/** The connection string's blob service, strict about Azure's limits when the tests ask for it. */
function strictBlobService(plain: BlobServiceClient): BlobServiceClient {
  return limitsStrict() ? new BlobServiceClient(plain.url, blobPipeline(plain.credential)) : plain;
}

/** The connection string's queue, strict about Azure's limits when the tests ask for it. */
function strictQueue(plain: QueueClient): QueueClient {
  if (!limitsStrict()) return plain;
  // The connection string's credential, kept by the SDK on the client (not public in its typings).
  return new QueueClient(plain.url, queuePipeline(Reflect.get(plain, 'credential') as Parameters<typeof newQueuePipeline>[0]));
}

/** A customer's container from its SAS URL (strict about Azure's limits like the app's own clients). */
export function sasContainer(sasUrl: string, options?: StoragePipelineOptions): ContainerClient {
  return new ContainerClient(sasUrl, blobPipeline(new AnonymousCredential(), options));
}

/** Table property holding an integer that may exceed 2^31 (seq numbers): stored as Edm.Int64. */
export const int64 = (n: number) => BigInt(n);
export const num = (v: unknown): number => (v === undefined || v === null ? 0 : Number(v));

/** RowKeys may not contain / \ # ? or control characters: percent-encode them. */
export function encodeKey(s: string): string {
  return s.replace(/[%/\\#?\u0000-\u001f\u007f-\u009f]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
export function decodeKey(s: string): string {
  return s.replace(/%([0-9a-f]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
}

export type Entity<T> = TableEntityResult<T>;

