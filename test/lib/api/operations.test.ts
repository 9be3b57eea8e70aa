// Operations: the poison queue replayed against real Azurite queues, the lag listing, sync-now refusals.
import { beforeAll, describe, expect, it } from 'vitest';
import type { QueueClient } from '@azure/storage-queue';
import { createServices, type Services } from '../../../src/lib/services.js';
import { decodeExportMessage, Operations, poisonQueueName, type IntegrationList, type PoisonList } from '../../../src/lib/api/operations.js';
import { UserError } from '../../../src/lib/platform/errors.js';
import { customerContainer } from '../../support/container.js';
import { freshWorkspace, testConfig, testStorage } from '../../support/env.js';

let services: Services;
let operations: Operations;
let poison: QueueClient;
const b64 = (text: string) => Buffer.from(text).toString('base64');

beforeAll(async () => {
  const config = testConfig();
  await testStorage(config);
  services = createServices(config);
  operations = new Operations(services);
  poison = services.storage.queue(poisonQueueName(config.exportQueueName));
});

async function drain(queue: QueueClient): Promise<string[]> {
  const texts: string[] = [];
  for (;;) {
    const { receivedMessageItems } = await queue.receiveMessages({ numberOfMessages: 32 });
    if (!receivedMessageItems.length) return texts;
    for (const m of receivedMessageItems) {
      texts.push(Buffer.from(m.messageText, 'base64').toString('utf8'));
      await queue.deleteMessage(m.messageId, m.popReceipt);
    }
  }
}

async function refusal(p: Promise<unknown>): Promise<{ code: string; status: number }> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(UserError);
  return { code: (e as UserError).code, status: (e as UserError).status };
}

describe('poison replay', () => {
  it('sends valid export messages back to the export queue and leaves anything else in poison', async () => {
    const ws = freshWorkspace();
    await poison.sendMessage(b64(JSON.stringify({ workspaceId: ws, fileType: 'deliveries' })));
    await poison.sendMessage(b64('not json at all'));
    await poison.sendMessage(b64(JSON.stringify({ workspaceId: ws, fileType: 'nope' })));
    await poison.sendMessage(JSON.stringify({ workspaceId: ws, fileType: 'events' })); // raw JSON (messageEncoding none)
    await poison.sendMessage(b64('https://acct.blob.core.windows.net/c?sv=2024&sr=c&sp=racwl&sig=SECRET'));

    const listed = (await operations.poison()).body as PoisonList;
    expect(listed.count).toBe(5);
    expect(listed.messages.map((m) => m.job)).toEqual([{ workspaceId: ws, fileType: 'deliveries' }, null, null, { workspaceId: ws, fileType: 'events' }, null]);
    expect(listed.messages[2].issues).toEqual([expect.stringContaining('fileType')]);
    expect(listed.messages[1]).toMatchObject({ text: 'not json at all', issues: ['(message): not JSON'] });
    expect(JSON.stringify(listed)).not.toMatch(/sig=|SECRET/);

    expect(await operations.replay('{}')).toEqual({ status: 200, body: { replayed: 2, skipped: 3 } });
    expect((await drain(services.storage.exportQueue)).map((t) => JSON.parse(t)).sort((a, b) => a.fileType.localeCompare(b.fileType))).toEqual([
      { workspaceId: ws, fileType: 'deliveries' },
      { workspaceId: ws, fileType: 'events' },
    ]);
    // The invalid ones stay, visible at once; a second replay moves nothing.
    const left = (await operations.poison()).body as PoisonList;
    expect(left.messages.map((m) => m.text)).toEqual(['not json at all', expect.stringContaining('"nope"'), expect.stringContaining('redacted')]);
    expect(await operations.replay('')).toEqual({ status: 200, body: { replayed: 0, skipped: 3 } });
    await poison.clearMessages();
  });

  it('replays at most max messages', async () => {
    const ws = freshWorkspace();
    for (const fileType of ['deliveries', 'metrics', 'people']) await poison.sendMessage(b64(JSON.stringify({ workspaceId: ws, fileType })));
    expect((await operations.replay('{"max": 2}')).body).toEqual({ replayed: 2, skipped: 0 });
    expect(await drain(services.storage.exportQueue)).toHaveLength(2);
    expect(((await operations.poison()).body as PoisonList).count).toBe(1);
    expect((await operations.replay('{"max": 5}')).body).toEqual({ replayed: 1, skipped: 0 });
    expect(await drain(services.storage.exportQueue)).toHaveLength(1);
  });

  it('refuses a bad body', async () => {
    expect(await refusal(operations.replay('{"max": 0}'))).toEqual({ code: 'invalid_request', status: 400 });
    expect(await refusal(operations.replay('{"max": 1, "all": true}'))).toEqual({ code: 'invalid_request', status: 400 });
    expect(await refusal(operations.replay('{'))).toEqual({ code: 'invalid_json', status: 400 });
  });

  it('decodes base64 JSON, raw JSON and garbage', () => {
    expect(decodeExportMessage(b64('{"workspaceId":3,"fileType":"people"}'))).toEqual({ job: { workspaceId: 3, fileType: 'people' } });
    expect(decodeExportMessage('{"workspaceId":3,"fileType":"people"}')).toEqual({ job: { workspaceId: 3, fileType: 'people' } });
    expect(decodeExportMessage('abcd')).toMatchObject({ job: null, text: 'abcd' });
    expect(decodeExportMessage(b64('x'.repeat(2000)))).toMatchObject({ job: null, text: `${'x'.repeat(500)}…` });
  });
});

describe('integration listing and sync now', () => {
  it('lists integrations with the lag of each enabled file, and queues exports only for enabled pairs', async () => {
    const c = await customerContainer();
    const ws = freshWorkspace();
    await services.integrations.put(ws, { sasUrl: c.sasUrl, blobPath: 'ops', files: ['deliveries', 'events'] });
    await services.ingest.ingest(ws, 'deliveries', [{ delivery_id: 'd1', delivery_type: 'email', created_at: new Date().toISOString() }]);

    const list = (await operations.integrations({})).body as IntegrationList;
    const mine = list.integrations.find((i) => i.workspaceId === ws);
    expect(mine).toMatchObject({ enabled: true, schemaVersion: 'v4', container: c.client.containerName, blobPath: 'ops', pendingChanges: 1 });
    expect(Object.keys(mine!.files)).toEqual(['deliveries', 'events']);
    expect(mine!.files.deliveries).toMatchObject({ pendingChanges: 1, running: false, lastError: null });
    expect(JSON.stringify(list)).not.toMatch(/sig=/);
    const one = (await operations.integrations({ limit: '1', code: 'a-function-key' })).body as IntegrationList;
    expect(one.integrations.length).toBeLessThanOrEqual(1);
    expect(await refusal(operations.integrations({ limit: '0' }))).toEqual({ code: 'invalid_request', status: 400 });

    // One integration whose status cannot be read is listed with an error; the others as usual.
    const broken = { ...services, cursors: Object.assign(Object.create(services.cursors), { list: async () => Promise.reject(new Error('table down ?sv=1&sig=SECRET')) }) };
    const partial = (await new Operations(broken).integrations({})).body as IntegrationList;
    expect(partial.integrations.find((i) => i.workspaceId === ws)).toMatchObject({ files: {}, error: { code: 'status_unavailable', message: expect.stringContaining('table down') } });
    expect(JSON.stringify(partial)).not.toMatch(/sig=|SECRET/);

    expect(await operations.syncNow(ws, 'deliveries')).toEqual({ status: 202, body: { queued: true, workspaceId: ws, fileType: 'deliveries' } });
    expect(await drain(services.storage.exportQueue)).toEqual([JSON.stringify({ workspaceId: ws, fileType: 'deliveries' })]);
    expect(await refusal(operations.syncNow(ws, 'people'))).toEqual({ code: 'file_disabled', status: 409 });
    expect(await refusal(operations.syncNow(ws, 'bogus'))).toEqual({ code: 'unknown_file_type', status: 404 });
    expect(await refusal(operations.syncNow(freshWorkspace(), 'deliveries'))).toEqual({ code: 'integration_not_found', status: 404 });
    await services.integrations.disable(ws);
    expect(await refusal(operations.syncNow(ws, 'deliveries'))).toEqual({ code: 'integration_disabled', status: 409 });
    expect(await drain(services.storage.exportQueue)).toEqual([]);
  });
});
