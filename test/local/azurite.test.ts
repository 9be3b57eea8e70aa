import { describe, expect, it, inject } from 'vitest';
import { BlobServiceClient } from '@azure/storage-blob';

describe('test Azurite', () => {
  it('serves the blob service on a loopback port', async () => {
    const client = BlobServiceClient.fromConnectionString(inject('storageConnectionString'));
    const container = client.getContainerClient(`probe${Date.now()}`);
    await container.create();
    await container.getBlockBlobClient('a.txt').upload('hi', 2);
    const names: string[] = [];
    for await (const b of container.listBlobsFlat()) names.push(b.name);
    expect(names).toEqual(['a.txt']);
    expect(inject('azuritePorts').blob).toBeGreaterThan(0);
  });
});
