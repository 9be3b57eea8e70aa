// The strict mode of the test setup refuses what Azure refuses (Azurite accepts all of it): each limit
// once through the app's clients against Azurite, with Azure's status and error code.
import { TableClient, TableTransaction, type TableEntity } from '@azure/data-tables';
import { BlobServiceClient } from '@azure/storage-blob';
import { QueueClient } from '@azure/storage-queue';
import { beforeAll, describe, expect, it } from 'vitest';
import { AZURE_LIMITS, blobRefusal, entityRefusal, transactionChunks } from '../../../src/lib/platform/azure-limits.js';
import { TABLES, type AppStorage } from '../../../src/lib/platform/storage.js';
import { freshWorkspace, testConfig, testStorage } from '../../support/env.js';

let storage: AppStorage;
let connectionString: string;
beforeAll(async () => {
  const config = testConfig();
  if (config.storage.kind !== 'connectionString') throw new Error('the tests run on a connection string');
  connectionString = config.storage.connectionString;
  storage = await testStorage(config);
});

const refused = async (op: Promise<unknown>) => {
  const e = (await op.then(() => undefined, (err: unknown) => err)) as { statusCode?: number; code?: string; details?: { errorCode?: string } } | undefined;
  // Table errors outside a batch carry their code in details (as Azure's and Azurite's own answers do).
  return e && { statusCode: e.statusCode, code: e.code ?? e.details?.errorCode };
};
const text = (chars: number) => 'x'.repeat(chars);
const props = (n: number, chars: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`p${i}`, text(chars)]));
const plainTable = (name: string) => TableClient.fromConnectionString(connectionString, name, { allowInsecureConnection: true });

describe('Azure limits, enforced in the tests (AZURE_LIMITS_STRICT)', () => {
  it('is on for the whole suite', () => {
    expect(process.env.AZURE_LIMITS_STRICT).toBe('1');
  });

  it('an entity-group transaction of more than 100 entities: 400 InvalidInput (as Azurite answers too)', async () => {
    const pk = String(freshWorkspace());
    const tx = (n: number, from = 0) => Array.from({ length: n }, (_, i) => ['create', { partitionKey: pk, rowKey: `r${from + i}` }] as ['create', TableEntity]);
    const table = storage.table(TABLES.peopleState);
    expect(await refused(table.submitTransaction(tx(101)))).toEqual({ statusCode: 400, code: 'InvalidInput' });
    expect(await refused(table.submitTransaction(tx(100)))).toBeUndefined();
    expect(await refused(plainTable(table.tableName).submitTransaction(tx(101, 1000)))).toEqual({ statusCode: 400, code: 'InvalidInput' });
  });

  it('an entity-group transaction over 4 MiB: 413 RequestBodyTooLarge (as Azurite answers too)', async () => {
    const pk = String(freshWorkspace());
    // 90 entities of 2 × 25,000 characters: ~4.5 MB of JSON, each entity well under 1 MiB.
    const tx = (prefix: string) => Array.from({ length: 90 }, (_, i) => ['create', { partitionKey: pk, rowKey: `${prefix}${i}`, ...props(2, 25_000) }] as ['create', TableEntity]);
    const table = storage.table(TABLES.peopleState);
    expect(await refused(table.submitTransaction(tx('a')))).toEqual({ statusCode: 413, code: 'RequestBodyTooLarge' });
    expect(await refused(plainTable(table.tableName).submitTransaction(tx('b')))).toEqual({ statusCode: 413, code: 'RequestBodyTooLarge' });
  });

  it('an entity over 1 MiB: 400 EntityTooLarge, alone or in a batch (Azurite accepts it)', async () => {
    const pk = String(freshWorkspace());
    const big = { partitionKey: pk, rowKey: 'big', ...props(20, 30_000) }; // 20 × 60,000 bytes as UTF-16
    const table = storage.table(TABLES.peopleState);
    expect(await refused(table.createEntity(big))).toEqual({ statusCode: 400, code: 'EntityTooLarge' });
    const tx = new TableTransaction();
    tx.createEntity({ partitionKey: pk, rowKey: 'small' });
    tx.createEntity(big);
    expect(await refused(table.submitTransaction(tx.actions))).toEqual({ statusCode: 400, code: 'EntityTooLarge' });
    expect(await refused(plainTable(table.tableName).createEntity(big))).toBeUndefined();
  });

  it('a property over 64 KiB (a string over 32K characters): 400 PropertyValueTooLarge (as Azurite answers too)', async () => {
    const pk = String(freshWorkspace());
    const table = storage.table(TABLES.peopleState);
    expect(await refused(table.createEntity({ partitionKey: pk, rowKey: 'a', v: text(32 * 1024 + 1) }))).toEqual({ statusCode: 400, code: 'PropertyValueTooLarge' });
    expect(await refused(table.createEntity({ partitionKey: pk, rowKey: 'b', v: new Uint8Array(64 * 1024 + 1) }))).toEqual({ statusCode: 400, code: 'PropertyValueTooLarge' });
    expect(await refused(table.createEntity({ partitionKey: pk, rowKey: 'c', v: text(32 * 1024), w: new Uint8Array(64 * 1024) }))).toBeUndefined();
    expect(await refused(plainTable(table.tableName).createEntity({ partitionKey: pk, rowKey: 'd', v: text(40_000) }))).toEqual({ statusCode: 400, code: 'PropertyValueTooLarge' });
  });

  it('more than 252 properties: 400 TooManyProperties', async () => {
    const pk = String(freshWorkspace());
    const table = storage.table(TABLES.peopleState);
    expect(await refused(table.createEntity({ partitionKey: pk, rowKey: 'a', ...props(253, 1) }))).toEqual({ statusCode: 400, code: 'TooManyProperties' });
    expect(await refused(table.createEntity({ partitionKey: pk, rowKey: 'b', ...props(252, 1) }))).toBeUndefined();
  });

  it('measures an entity as Azure documents it', () => {
    // 4 + 2 × len(PK + RK) + Σ (8 + 2 × len(name) + 4 + 2 × len(value)): keys "p", "r" and 15 properties
    // p0..p14 of 32K characters are 983,298 bytes; a 16th property "q" of c characters adds 14 + 2c, so c = 32,632 fits 1 MiB.
    const entity = (c: number) => ({ PartitionKey: 'p', RowKey: 'r', ...props(15, 32 * 1024), q: text(c) });
    expect(entityRefusal(entity(32_632))).toBeUndefined();
    expect(entityRefusal(entity(32_633))?.code).toBe('EntityTooLarge');
    expect(entityRefusal({ PartitionKey: 'p', RowKey: 'r', n: '1', 'n@odata.type': 'Edm.Int64', b: true })).toBeUndefined();
  });

  it('a queue message over 64 KiB: 413 RequestBodyTooLarge (as Azurite answers too)', async () => {
    expect(await refused(storage.exportQueue.sendMessage(text(AZURE_LIMITS.queueMessageBytes + 1)))).toEqual({ statusCode: 413, code: 'RequestBodyTooLarge' });
    expect(await refused(storage.exportQueue.sendMessage(text(AZURE_LIMITS.queueMessageBytes)))).toBeUndefined();
    // Multi-byte characters count as their UTF-8 bytes, XML escapes as the character.
    expect(await refused(storage.exportQueue.sendMessage('é'.repeat(AZURE_LIMITS.queueMessageBytes / 2 + 1)))).toEqual({ statusCode: 413, code: 'RequestBodyTooLarge' });
    expect(await refused(storage.exportQueue.sendMessage('<'.repeat(AZURE_LIMITS.queueMessageBytes)))).toBeUndefined();
    const plain = new QueueClient(connectionString, storage.exportQueue.name);
    expect(await refused(plain.sendMessage(text(AZURE_LIMITS.queueMessageBytes + 1)))).toEqual({ statusCode: 413, code: 'RequestBodyTooLarge' });
    await storage.exportQueue.clearMessages();
  });

  it('a block list of more than 50,000 blocks: 400 BlockListTooLong (Azurite accepts it)', async () => {
    const blob = storage.sourceContainer.getBlockBlobClient(`limits/${freshWorkspace()}.bin`);
    const id = (i: number) => Buffer.from(`b${String(i).padStart(6, '0')}`).toString('base64');
    await blob.stageBlock(id(0), Buffer.from('x'), 1);
    const ids = Array.from({ length: AZURE_LIMITS.blocksPerBlob + 1 }, () => id(0));
    expect(await refused(blob.commitBlockList(ids))).toEqual({ statusCode: 400, code: 'BlockListTooLong' });
    expect(await refused(blob.commitBlockList(ids.slice(1)))).toBeUndefined();
    const plain = BlobServiceClient.fromConnectionString(connectionString).getContainerClient(storage.sourceContainer.containerName).getBlockBlobClient(blob.name);
    expect(await refused(plain.commitBlockList(ids))).toBeUndefined();
  });

  it('a block over 4000 MiB, a Put Blob over 5000 MiB: 413 RequestBodyTooLarge (measured by Content-Length; not sent, to spare 4 GB)', () => {
    const put = (query: string, length: number, type?: string) =>
      blobRefusal('PUT', `http://127.0.0.1/devstoreaccount1/c/b${query}`, { get: (n) => (n === 'content-length' ? String(length) : n === 'x-ms-blob-type' ? type : undefined) }, undefined)?.code;
    expect(put('?comp=block&blockid=AA', AZURE_LIMITS.blockBytes + 1)).toBe('RequestBodyTooLarge');
    expect(put('?comp=block&blockid=AA', AZURE_LIMITS.blockBytes)).toBeUndefined();
    expect(put('', AZURE_LIMITS.putBlobBytes + 1, 'BlockBlob')).toBe('RequestBodyTooLarge');
    expect(put('', AZURE_LIMITS.putBlobBytes, 'BlockBlob')).toBeUndefined();
  });

  it('transactionChunks: at most 100 operations and 4 MiB a transaction, in order, accepted by the strict table', async () => {
    const pk = String(freshWorkspace());
    const action = (i: number, chars: number) => ['create', { partitionKey: pk, rowKey: `r${String(i).padStart(3, '0')}`, v: 'é'.repeat(chars) }] as ['create', TableEntity];
    expect(transactionChunks(Array.from({ length: 250 }, (_, i) => action(i, 1))).map((c) => c.length)).toEqual([100, 100, 50]);
    // 120 entities of 30,000 two-byte characters: ~7 MB of JSON in all.
    const big = Array.from({ length: 120 }, (_, i) => action(i, 30_000));
    const chunks = transactionChunks(big);
    expect(chunks.flat()).toEqual(big);
    expect(chunks.length).toBeGreaterThan(1);
    const table = storage.table(TABLES.peopleState);
    for (const chunk of chunks) await table.submitTransaction(chunk);
  });
});
