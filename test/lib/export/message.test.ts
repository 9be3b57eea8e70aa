import { describe, expect, it } from 'vitest';
import { parseExportMessage, parseFanOutMessage } from '../../../src/lib/export/message.js';

describe('queue messages', () => {
  it('a {workspaceId, fileType} message already queued is still an export job, never a fan-out message', () => {
    const old = { workspaceId: 42, fileType: 'deliveries' };
    expect(parseExportMessage(old)).toEqual({ success: true, data: old });
    expect(parseFanOutMessage(old)).toBeUndefined();
  });

  it('shard and sweep messages are fan-out messages, never export jobs', () => {
    expect(parseFanOutMessage({ shard: 3 })).toEqual({ shard: 3 });
    expect(parseFanOutMessage({ sweep: '' })).toEqual({ sweep: '' });
    expect(parseFanOutMessage({ shard: -1 })).toBeUndefined();
    expect(parseFanOutMessage({ shard: 3, workspaceId: 1 })).toBeUndefined();
    expect(parseExportMessage({ shard: 3 }).success).toBe(false);
  });

  it('a shard page message names where it starts with a marker key, nothing else', () => {
    expect(parseFanOutMessage({ shard: 3, after: '4711|deliveries' })).toEqual({ shard: 3, after: '4711|deliveries' });
    expect(parseFanOutMessage({ shard: 3, after: "4711|deliveries' or true" })).toBeUndefined();
    expect(parseFanOutMessage({ shard: 3, after: '' })).toBeUndefined();
  });
});
