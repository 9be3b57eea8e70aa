import { describe, expect, it } from 'vitest';
import { EXPORT_BLOCK_BYTES, loadConfig, MAX_EXPORT_FILE_BYTES } from '../../../src/lib/platform/config.js';
import { AZURE_LIMITS } from '../../../src/lib/platform/azure-limits.js';
import { DEFAULT_BLOCK_BYTES } from '../../../src/lib/parquet/writer.js';
import { RECENT_MAX_BYTES } from '../../../src/lib/source/people-recent.js';

const env = { AzureWebJobsStorage: 'UseDevelopmentStorage=true', SAS_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64') };

describe('config: file size and Azure blocks per blob', () => {
  it('a file at EXPORT_MAX_BYTES_PER_FILE, even twice its estimate, stays within 50,000 blocks', () => {
    expect(Math.ceil((2 * MAX_EXPORT_FILE_BYTES) / EXPORT_BLOCK_BYTES)).toBeLessThanOrEqual(AZURE_LIMITS.blocksPerBlob);
    expect(EXPORT_BLOCK_BYTES).toBeLessThanOrEqual(AZURE_LIMITS.blockBytes);
    // The default: 512 MiB files of 8 MiB blocks are 64 blocks.
    expect(loadConfig(env).maxBytesPerFile / EXPORT_BLOCK_BYTES).toBe(64);
    expect(EXPORT_BLOCK_BYTES).toBe(DEFAULT_BLOCK_BYTES);
  });

  it('refuses EXPORT_MAX_BYTES_PER_FILE that could need more blocks than a blob holds', () => {
    expect(loadConfig({ ...env, EXPORT_MAX_BYTES_PER_FILE: String(MAX_EXPORT_FILE_BYTES) }).maxBytesPerFile).toBe(MAX_EXPORT_FILE_BYTES);
    expect(() => loadConfig({ ...env, EXPORT_MAX_BYTES_PER_FILE: String(MAX_EXPORT_FILE_BYTES + 1) })).toThrow(/EXPORT_MAX_BYTES_PER_FILE.*50000 blocks/);
  });
});

describe('config: the people writer memory', () => {
  it('PEOPLE_STATE_MEMORY_MB: 64 MiB unless set; anything but a positive integer is a start-up error naming it', () => {
    expect(loadConfig(env).peopleStateMemoryBytes).toBe(RECENT_MAX_BYTES);
    expect(loadConfig({ ...env, PEOPLE_STATE_MEMORY_MB: '128' }).peopleStateMemoryBytes).toBe(128 * 1024 * 1024);
    for (const bad of ['0', '-1', '1.5', 'lots']) expect(() => loadConfig({ ...env, PEOPLE_STATE_MEMORY_MB: bad })).toThrow(new RegExp(`PEOPLE_STATE_MEMORY_MB must be a positive integer, got "${bad}"`));
  });
});
