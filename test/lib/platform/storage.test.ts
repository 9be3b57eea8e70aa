// The app's storage connection by the Functions host's rules: a connection string, or an
// identity-based connection (AzureWebJobsStorage__*) whose clients reach the account's service URIs
// with a token credential. Config errors name the setting to fix.
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/lib/platform/errors.js';
import { loadConfig } from '../../../src/lib/platform/config.js';
import { appStorage, storageConnection } from '../../../src/lib/platform/storage.js';
import { TEST_KEY } from '../../support/env.js';

const failure = (env: Record<string, string>) => {
  try {
    storageConnection(env);
  } catch (e) {
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError');
};

describe('storageConnection', () => {
  it('AzureWebJobsStorage is a connection string, and wins over identity settings', () => {
    expect(storageConnection({ AzureWebJobsStorage: 'UseDevelopmentStorage=true', AzureWebJobsStorage__accountName: 'other' })).toEqual({
      kind: 'connectionString',
      connectionString: 'UseDevelopmentStorage=true',
    });
  });

  it('AzureWebJobsStorage__accountName: the account\'s public service URIs and DefaultAzureCredential', () => {
    expect(storageConnection({ AzureWebJobsStorage__accountName: 'stwarehouse01' })).toEqual({
      kind: 'identity',
      blobServiceUri: 'https://stwarehouse01.blob.core.windows.net',
      queueServiceUri: 'https://stwarehouse01.queue.core.windows.net',
      tableServiceUri: 'https://stwarehouse01.table.core.windows.net',
    });
  });

  it('service URIs override the account name (other clouds, private endpoints), and a user-assigned identity is named by client id', () => {
    expect(
      storageConnection({
        AzureWebJobsStorage__accountName: 'stwarehouse01',
        AzureWebJobsStorage__blobServiceUri: 'https://stwarehouse01.blob.core.chinacloudapi.cn/',
        AzureWebJobsStorage__credential: 'managedidentity',
        AzureWebJobsStorage__clientId: '11111111-2222-3333-4444-555555555555',
      }),
    ).toEqual({
      kind: 'identity',
      blobServiceUri: 'https://stwarehouse01.blob.core.chinacloudapi.cn',
      queueServiceUri: 'https://stwarehouse01.queue.core.windows.net',
      tableServiceUri: 'https://stwarehouse01.table.core.windows.net',
      credential: 'managedidentity',
      clientId: '11111111-2222-3333-4444-555555555555',
    });
  });

  it('refuses what the host would not connect with, naming the setting', () => {
    expect(failure({}).setting).toBe('AzureWebJobsStorage');
    expect(failure({}).message).toMatch(/AzureWebJobsStorage__accountName/);
    expect(failure({ AzureWebJobsStorage__accountName: 'St-Warehouse' }).setting).toBe('AzureWebJobsStorage__accountName');
    const onlyBlob = failure({ AzureWebJobsStorage__blobServiceUri: 'https://a.blob.core.windows.net', AzureWebJobsStorage__queueServiceUri: 'https://a.queue.core.windows.net' });
    expect(onlyBlob.setting).toBe('AzureWebJobsStorage__tableServiceUri');
    expect(failure({ AzureWebJobsStorage__accountName: 'abc', AzureWebJobsStorage__queueServiceUri: 'http://abc.queue.core.windows.net' }).setting).toBe('AzureWebJobsStorage__queueServiceUri');
    expect(failure({ AzureWebJobsStorage__accountName: 'abc', AzureWebJobsStorage__tableServiceUri: 'not a url' }).setting).toBe('AzureWebJobsStorage__tableServiceUri');
    expect(failure({ AzureWebJobsStorage__accountName: 'abc', AzureWebJobsStorage__credential: 'clientsecret' }).setting).toBe('AzureWebJobsStorage__credential');
    expect(failure({ AzureWebJobsStorage__accountName: 'abc', AzureWebJobsStorage__clientId: 'x' }).setting).toBe('AzureWebJobsStorage__credential');
  });

  it('loadConfig reads it, so a bad storage setting stops start-up', () => {
    expect(loadConfig({ AzureWebJobsStorage__accountName: 'stwarehouse01', SAS_ENCRYPTION_KEY: TEST_KEY }).storage.kind).toBe('identity');
    expect(() => loadConfig({ SAS_ENCRYPTION_KEY: TEST_KEY })).toThrow(/^configuration: AzureWebJobsStorage: is not set/);
  });

  it('an identity-based connection builds every client on the service URIs, without a key', () => {
    const storage = appStorage(storageConnection({ AzureWebJobsStorage__accountName: 'stwarehouse01' }), 'export-jobs', 'p1');
    expect(storage.table('cursors').url).toBe('https://stwarehouse01.table.core.windows.net');
    expect(storage.table('cursors').tableName).toBe('p1cursors');
    expect(storage.sourceContainer.url).toBe('https://stwarehouse01.blob.core.windows.net/p1source-log');
    expect(storage.exportQueue.url).toBe('https://stwarehouse01.queue.core.windows.net/export-jobs');
    expect(storage.queue('export-jobs-poison').url).toBe('https://stwarehouse01.queue.core.windows.net/export-jobs-poison');
    expect(storage.sourceContainer.credential.constructor.name).not.toMatch(/SharedKey/);
  });
});
