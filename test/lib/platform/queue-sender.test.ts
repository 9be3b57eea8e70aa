// The export queue's sender (queue-sender.ts) puts the same message QueueClient.sendMessage would, on
// each way the app connects, and fails the way the SDK does: through the real Azurite queue service.
import { QueueClient, QueueSASPermissions } from '@azure/storage-queue';
import { isRestError } from '@azure/core-rest-pipeline';
import { beforeAll, describe, expect, it } from 'vitest';
import { AZURE_LIMITS } from '../../../src/lib/platform/azure-limits.js';
import { messageSender, QUEUE_SERVICE_VERSION } from '../../../src/lib/platform/queue-sender.js';
import { countRequests } from '../../../src/local/requests.js';
import { testConfig } from '../../support/env.js';

let connectionString: string;
beforeAll(() => {
  const config = testConfig();
  if (config.storage.kind !== 'connectionString') throw new Error('the tests run on a connection string');
  connectionString = config.storage.connectionString;
});

let queues = 0;
async function freshQueue(): Promise<QueueClient> {
  const queue = new QueueClient(connectionString, `sender-${process.pid}-${queues++}`);
  await queue.create();
  return queue;
}

async function texts(queue: QueueClient): Promise<string[]> {
  const out: string[] = [];
  for (;;) {
    const { receivedMessageItems } = await queue.receiveMessages({ numberOfMessages: 32 });
    if (receivedMessageItems.length === 0) return out.sort();
    out.push(...receivedMessageItems.map((m) => m.messageText));
  }
}

describe('the export queue sender', () => {
  it('puts each text as given, as QueueClient.sendMessage does (shared key)', async () => {
    const queue = await freshQueue();
    const sent = ['eyJ3b3Jrc3BhY2VJZCI6MX0=', `<a b="c" d='e'>&amp; ]]> é 😀</a>`, 'x'.repeat(AZURE_LIMITS.queueMessageBytes)];
    const sender = messageSender(queue);
    for (const text of sent) await sender.send(text);
    const viaSdk = await freshQueue();
    for (const text of sent) await viaSdk.sendMessage(text);
    expect(await texts(queue)).toEqual([...sent].sort());
    expect(await texts(viaSdk)).toEqual([...sent].sort());
  });

  it('speaks the REST version of the installed @azure/storage-queue (an upgrade of the SDK fails here until the sender follows)', async () => {
    const queue = await freshQueue();
    const header = (o: { headers?: unknown }) => {
      const h = o.headers as Record<string, string | string[] | undefined> | undefined;
      return String(Object.entries(h ?? {}).find(([k]) => k.toLowerCase() === 'x-ms-version')?.[1]);
    };
    const log = countRequests(header);
    try {
      await queue.sendMessage('sdk');
      await messageSender(queue).send('ours');
    } finally {
      log.stop();
    }
    expect(log.requests).toEqual([QUEUE_SERVICE_VERSION, QUEUE_SERVICE_VERSION]);
  });

  it('works with a SAS URL (no account key in the process)', async () => {
    const queue = await freshQueue();
    const sasUrl = await queue.generateSasUrl({ permissions: QueueSASPermissions.parse('a'), expiresOn: new Date(Date.now() + 3600_000) });
    await messageSender(new QueueClient(sasUrl)).send('via sas');
    expect(await texts(queue)).toEqual(['via sas']);
  });

  it('fails as the SDK does: a missing queue is a RestError 404 QueueNotFound; a message over 64 KiB 413 RequestBodyTooLarge (strict limits)', async () => {
    const missing = new QueueClient(connectionString, `sender-missing-${process.pid}`);
    const error = (op: Promise<unknown>) => op.then(() => undefined, (e: unknown) => (isRestError(e) ? { statusCode: e.statusCode, code: e.code } : e));
    expect(await error(messageSender(missing).send('x'))).toEqual({ statusCode: 404, code: 'QueueNotFound' });
    expect(await error(missing.sendMessage('x'))).toEqual({ statusCode: 404, code: 'QueueNotFound' });
    const queue = await freshQueue();
    expect(await error(messageSender(queue).send('x'.repeat(AZURE_LIMITS.queueMessageBytes + 1)))).toEqual({ statusCode: 413, code: 'RequestBodyTooLarge' });
    expect(await texts(queue)).toEqual([]);
  });
});
