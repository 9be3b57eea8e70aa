// A customer container on the test Azurite, its SAS URL, and reading exported files back with DuckDB.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inject } from 'vitest';
import {
  AccountSASPermissions,
  AccountSASResourceTypes,
  AccountSASServices,
  generateAccountSASQueryParameters,
  BlobServiceClient,
  ContainerSASPermissions,
  generateBlobSASQueryParameters,
  StorageSharedKeyCredential,
  type ContainerClient,
} from '@azure/storage-blob';
import { DuckDBInstance } from '@duckdb/node-api';
import { DEV_ACCOUNT, DEV_KEY } from '../../src/local/azurite.js';

export interface CustomerContainer {
  client: ContainerClient;
  sasUrl: string;
  /** A SAS bound to a stored access policy `id` (created with racwl); revoke it with `revokePolicies()`. */
  policySas(id: string): Promise<string>;
  revokePolicies(): Promise<void>;
  /** A container SAS URL for this container (or, with `signedFor`, signed for another container's name). */
  sas(options: { permissions?: string; expiresOn?: Date; startsOn?: Date; signedFor?: string }): string;
  /** An account SAS URL pointing at this container. */
  accountSas(): string;
  /** Blob names in listing order. */
  list(prefix?: string): Promise<string[]>;
  /** Downloads blobs to a temp folder; returns local paths in the same order. */
  download(names: string[]): Promise<string[]>;
}

let counter = 0;

export async function customerContainer(permissions = 'racwl', expiresInMs = 60 * 24 * 3600_000): Promise<CustomerContainer> {
  const service = BlobServiceClient.fromConnectionString(inject('storageConnectionString'));
  const client = service.getContainerClient(`customer-${process.pid}-${Date.now()}-${counter++}`);
  await client.create();
  const sas = generateBlobSASQueryParameters(
    { containerName: client.containerName, permissions: ContainerSASPermissions.parse(permissions), expiresOn: new Date(Date.now() + expiresInMs) },
    new StorageSharedKeyCredential(DEV_ACCOUNT, DEV_KEY),
  ).toString();
  let dir: string | undefined;
  const credential = new StorageSharedKeyCredential(DEV_ACCOUNT, DEV_KEY);
  return {
    client,
    sasUrl: `${client.url}?${sas}`,
    async policySas(id) {
      await client.setAccessPolicy(undefined, [{ id, accessPolicy: { permissions: 'racwl', expiresOn: new Date(Date.now() + expiresInMs), startsOn: new Date(Date.now() - 60_000) } }]);
      return `${client.url}?${generateBlobSASQueryParameters({ containerName: client.containerName, identifier: id }, credential).toString()}`;
    },
    sas({ permissions = 'racwl', expiresOn = new Date(Date.now() + expiresInMs), startsOn, signedFor }) {
      const q = generateBlobSASQueryParameters(
        { containerName: signedFor ?? client.containerName, permissions: ContainerSASPermissions.parse(permissions), expiresOn, startsOn },
        credential,
      ).toString();
      return `${client.url}?${q}`;
    },
    accountSas() {
      const q = generateAccountSASQueryParameters(
        { services: AccountSASServices.parse('b').toString(), resourceTypes: AccountSASResourceTypes.parse('sco').toString(), permissions: AccountSASPermissions.parse('racwl'), expiresOn: new Date(Date.now() + expiresInMs) },
        credential,
      ).toString();
      return `${client.url}?${q}`;
    },
    async revokePolicies() {
      await client.setAccessPolicy(undefined, []);
    },
    async list(prefix) {
      const names: string[] = [];
      for await (const b of client.listBlobsFlat({ prefix })) names.push(b.name);
      return names;
    },
    async download(names) {
      return Promise.all(
        names.map(async (n) => {
          dir ??= mkdtempSync(path.join(tmpdir(), 'export-'));
          const local = path.join(dir, n.replace(/\//g, '__'));
          writeFileSync(local, await client.getBlockBlobClient(n).downloadToBuffer());
          return local;
        }),
      );
    },
  };
}

/** Runs SQL in a fresh in-memory DuckDB; rows as objects. */
export async function duck(sql: string): Promise<Record<string, unknown>[]> {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    const reader = await connection.runAndReadAll(sql);
    return reader.getRowObjectsJS() as Record<string, unknown>[];
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

export const sqlList = (paths: string[]) => `[${paths.map((p) => `'${p.replace(/'/g, "''")}'`).join(', ')}]`;
export { writeFileSync };
