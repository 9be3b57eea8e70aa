// Clients for the app's own storage account (AzureWebJobsStorage): tables, the source-log container, the export queue.
import { TableClient, type TableEntityResult } from '@azure/data-tables';
import { AnonymousCredential, BlobServiceClient, ContainerClient, newPipeline, type StoragePipelineOptions } from '@azure/storage-blob';
import { newPipeline as newQueuePipeline, QueueClient } from '@azure/storage-queue';
import { blobLimitsFactory, limitsStrict, queueLimitsFactory, tableLimitsOptions } from './azure-limits.js';

export const TABLES = {
  sourceIndex: 'sourceindex',
  peopleState: 'peoplestate',
  cursors: 'cursors',
  integrations: 'integrations',
  deliveryOwners: 'deliveryowners',
  gonePeople: 'gonepeople',
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
      t = TableClient.fromConnectionString(connectionString, `${prefix}${name}`, { allowInsecureConnection: insecure, ...tableLimitsOptions() });
      tables.set(name, t);
    }
    return t;
  };
  const plainBlobService = BlobServiceClient.fromConnectionString(connectionString);
  const blobService = limitsStrict() ? new BlobServiceClient(plainBlobService.url, blobPipeline(plainBlobService.credential)) : plainBlobService;
  const sourceContainer = blobService.getContainerClient(`${prefix.toLowerCase()}${SOURCE_CONTAINER}`);
  const exportQueue = queueClient(connectionString, exportQueueName);
  let readiness: Promise<void> | undefined;
  const ready = () => {
    readiness ??= (async () => {
      await Promise.all([
        ...Object.values(TABLES).map((n) => table(n).createTable()),
        sourceContainer.createIfNotExists(),
        exportQueue.createIfNotExists(),
        queueClient(connectionString, `${exportQueueName}-poison`).createIfNotExists(),
      ]);
    })().catch((e) => {
      readiness = undefined;
      throw e;
    });
    return readiness;
  };
  return { table, sourceContainer, exportQueue, ready };
}

/** A blob pipeline; with AZURE_LIMITS_STRICT=1 it refuses what Azure would (see azure-limits.ts). */
function blobPipeline(credential: BlobServiceClient['credential'], options?: StoragePipelineOptions) {
  const pipeline = newPipeline(credential, options);
  if (limitsStrict()) pipeline.factories.push(blobLimitsFactory());
  return pipeline;
}

/** A queue of the app's storage account (strict about Azure's limits like the other clients). */
export function queueClient(connectionString: string, queueName: string): QueueClient {
  const plain = new QueueClient(connectionString, queueName);
  if (!limitsStrict()) return plain;
  // The connection string's credential, kept by the SDK on the client (not public in its typings).
  const pipeline = newQueuePipeline(Reflect.get(plain, 'credential') as Parameters<typeof newQueuePipeline>[0]);
  pipeline.factories.push(queueLimitsFactory());
  return new QueueClient(plain.url, pipeline);
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

