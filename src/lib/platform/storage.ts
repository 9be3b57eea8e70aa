// Clients for the app's own storage account (AzureWebJobsStorage): tables, the source-log container, the export queue.
import { TableClient, type TableEntityResult } from '@azure/data-tables';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { QueueClient } from '@azure/storage-queue';

export const TABLES = {
  sourceIndex: 'sourceindex',
  peopleState: 'peoplestate',
  cursors: 'cursors',
  integrations: 'integrations',
  rateLimits: 'ratelimits',
} as const;
export const SOURCE_CONTAINER = 'source-log';

export interface AppStorage {
  /** A table of the app, by its logical name (the STORAGE_PREFIX setting is prepended). */
  table(name: (typeof TABLES)[keyof typeof TABLES]): TableClient;
  sourceContainer: ContainerClient;
  exportQueue: QueueClient;
  /** Creates tables, container and queues once; safe to call from every invocation. */
  ready(): Promise<void>;
}

const cache = new Map<string, AppStorage>();

export function appStorage(connectionString: string, exportQueueName: string, prefix = ''): AppStorage {
  const key = `${connectionString}\u0000${exportQueueName}\u0000${prefix}`;
  let storage = cache.get(key);
  if (!storage) {
    storage = createAppStorage(connectionString, exportQueueName, prefix);
    cache.set(key, storage);
  }
  return storage;
}

function createAppStorage(connectionString: string, exportQueueName: string, prefix: string): AppStorage {
  const insecure = /DefaultEndpointsProtocol=http;|Endpoint=http:\/\//i.test(connectionString) || /UseDevelopmentStorage=true/i.test(connectionString);
  const tables = new Map<string, TableClient>();
  const table = (name: string) => {
    let t = tables.get(name);
    if (!t) {
      t = TableClient.fromConnectionString(connectionString, `${prefix}${name}`, { allowInsecureConnection: insecure });
      tables.set(name, t);
    }
    return t;
  };
  const blobService = BlobServiceClient.fromConnectionString(connectionString);
  const sourceContainer = blobService.getContainerClient(`${prefix.toLowerCase()}${SOURCE_CONTAINER}`);
  const exportQueue = new QueueClient(connectionString, exportQueueName);
  let readiness: Promise<void> | undefined;
  const ready = () => {
    readiness ??= (async () => {
      await Promise.all([
        ...Object.values(TABLES).map((n) => table(n).createTable()),
        sourceContainer.createIfNotExists(),
        exportQueue.createIfNotExists(),
        new QueueClient(connectionString, `${exportQueueName}-poison`).createIfNotExists(),
      ]);
    })().catch((e) => {
      readiness = undefined;
      throw e;
    });
    return readiness;
  };
  return { table, sourceContainer, exportQueue, ready };
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

