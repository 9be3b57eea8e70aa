import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { QueueServiceClient, type QueueClient } from '@azure/storage-queue';
import { startHost, type Host, type LogRecord } from '../../src/local/host.js';
import type { FixtureEvent } from './fixtures/app.js';

const entry = fileURLToPath(new URL('./fixtures/app.ts', import.meta.url));
// The fixture must not be imported here: it has to be first imported by the host (with its core API).
const events: FixtureEvent[] = ((globalThis as Record<string, unknown>).__localHostFixtureEvents ??= []) as FixtureEvent[];
const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

async function until<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, ms = 4000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function peekAll(queue: QueueClient): Promise<string[]> {
  const r = await queue.peekMessages({ numberOfMessages: 32 });
  return r.peekedMessageItems.map((m) => m.messageText);
}

describe('local Functions host', () => {
  const logs: LogRecord[] = [];
  const workQueueName = `work-${randomUUID().slice(0, 8)}`;
  let host: Host;
  let workQueue: QueueClient;
  let poisonQueue: QueueClient;

  beforeAll(async () => {
    const connectionString = inject('storageConnectionString');
    host = await startHost({
      entry,
      port: 0,
      settings: { FixtureStorage: connectionString, WORK_QUEUE: workQueueName, TICK_SCHEDULE: '*/1 * * * * *' },
      hostJson: {
        version: '2.0',
        extensions: {
          queues: {
            batchSize: 4,
            newBatchThreshold: 2,
            maxPollingInterval: '00:00:00.100',
            visibilityTimeout: '00:00:00',
            maxDequeueCount: 3,
            messageEncoding: 'base64',
          },
        },
      },
      log: (r) => logs.push(r),
    });
    const service = QueueServiceClient.fromConnectionString(connectionString);
    workQueue = service.getQueueClient(workQueueName);
    poisonQueue = service.getQueueClient(`${workQueueName}-poison`);
    await workQueue.createIfNotExists();
  });

  afterAll(async () => {
    await host?.stop();
  });

  it('registers what the entry declares with the real @azure/functions API', () => {
    const names = host.functions.map((f) => f.name).sort();
    expect(names).toEqual(['boom', 'createThing', 'echo', 'fanOut', 'tick', 'work']);
    const echo = host.functions.find((f) => f.name === 'echo')!;
    expect(Object.values(echo.bindings).find((b) => b.type === 'httpTrigger')).toMatchObject({
      route: 'items/{id}/{rest?}',
      methods: ['GET', 'POST'],
      authLevel: 'function',
    });
    expect(host.url).toBe(`http://127.0.0.1:${host.port}`);
  });

  it('routes HTTP requests with params, optional params, query, headers and body', async () => {
    const get = await fetch(`${host.url}/api/items/42?q=hello%20world`, { headers: { 'x-test': 'yes' } });
    expect(get.status).toBe(200);
    expect(get.headers.get('content-type')).toMatch(/application\/json/);
    expect(await get.json()).toEqual({ method: 'GET', id: '42', rest: null, q: 'hello world', header: 'yes', body: '' });

    const post = await fetch(`${host.url}/api/items/a%20b/more`, { method: 'POST', body: '{"x":1}' });
    expect(await post.json()).toMatchObject({ method: 'POST', id: 'a b', rest: 'more', body: '{"x":1}' });

    const created = await fetch(`${host.url}/api/things`, { method: 'POST', body: JSON.stringify({ name: 'n1' }) });
    expect(created.status).toBe(201);
    expect(created.headers.get('x-thing')).toBe('yes');
    expect(await created.json()).toEqual({ created: 'n1' });
  });

  it('answers 405 for a known route with another method and 404 for unknown routes', async () => {
    const put = await fetch(`${host.url}/api/items/42`, { method: 'PUT' });
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toContain('GET');
    expect((await fetch(`${host.url}/api/nothing-here`)).status).toBe(404);
    expect((await fetch(`${host.url}/items/42`)).status).toBe(404);
  });

  it('answers 500 without leaking the error, and logs it', async () => {
    const res = await fetch(`${host.url}/api/boom`);
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(text).not.toContain('secret');
    expect(JSON.parse(text)).toMatchObject({ error: { code: 'internal_error' } });
    expect(logs.some((l) => l.function === 'boom' && l.level === 'error' && l.message.includes('secret detail'))).toBe(true);
  });

  it('writes context.log calls as records with function and invocation id', async () => {
    await fetch(`${host.url}/api/items/7`);
    const line = logs.find((l) => l.category === 'user' && l.function === 'echo' && l.message === 'echo 7');
    expect(line).toMatchObject({ level: 'info', function: 'echo' });
    expect(line!.invocationId).toMatch(/^[0-9a-f-]{36}$/);
    expect(Date.parse(line!.timestamp)).not.toBeNaN();
  });

  it('fires a */1 timer every second with the timer input', async () => {
    const ticks = await until('two ticks', () => events.filter((e) => e.fn === 'tick').length >= 2 && events.filter((e) => e.fn === 'tick'), 3500);
    expect(ticks[0].input).toMatchObject({ isPastDue: false, scheduleStatus: { next: expect.any(String) } });
  });

  it('runs a timer through POST /admin/functions/{name}; its queue output is handled by the queue function', async () => {
    const res = await fetch(`${host.url}/admin/functions/fanOut`, { method: 'POST', body: JSON.stringify({ input: '' }) });
    expect(res.status).toBe(202);
    await until('fanOut ran', () => events.some((e) => e.fn === 'fanOut'));
    await host.whenIdle({ timeoutMs: 5000 });
    const jobs = events.filter((e) => e.fn === 'work' && (e.input as { job?: string }).job === 'from-timer');
    expect(jobs.map((e) => (e.input as { n: number }).n).sort()).toEqual([1, 2]);
  });

  it('invoke() runs a non-HTTP function and resolves with its result', async () => {
    await expect(host.invoke('work', JSON.stringify({ direct: true }))).resolves.toBeUndefined();
    expect(events.some((e) => e.fn === 'work' && (e.input as { direct?: boolean }).direct)).toBe(true);
    await expect(host.invoke('echo')).rejects.toThrow(/HTTP function/);
    await expect(host.invoke('nope')).rejects.toThrow(/no function named "nope"/);
  });

  it('delivers a base64 queue message as parsed JSON with trigger metadata, then deletes it', async () => {
    const tag = randomUUID();
    await workQueue.sendMessage(b64(JSON.stringify({ hello: 'world', tag })));
    const seen = await until('message handled', () => events.find((e) => e.fn === 'work' && (e.input as { tag?: string }).tag === tag));
    expect(seen.input).toEqual({ hello: 'world', tag });
    expect(seen.triggerMetadata).toMatchObject({ dequeueCount: 1, id: expect.any(String), popReceipt: expect.any(String), insertionTime: expect.any(String) });
    await host.whenIdle({ timeoutMs: 5000 });
    expect(await peekAll(workQueue)).toEqual([]);
  });

  it('retries a failing message until maxDequeueCount, then moves it to <queue>-poison', async () => {
    const tag = randomUUID();
    const text = b64(JSON.stringify({ fail: true, tag }));
    await workQueue.sendMessage(text);
    await host.whenIdle({ timeoutMs: 5000 });
    const attempts = events.filter((e) => e.fn === 'work' && (e.input as { tag?: string }).tag === tag);
    expect(attempts.map((e) => e.triggerMetadata?.dequeueCount)).toEqual([1, 2, 3]);
    expect(await peekAll(poisonQueue)).toContain(text);
    expect(await peekAll(workQueue)).toEqual([]);
  });

  it('sends a message that is not valid base64 to poison without calling the function; the host keeps running', async () => {
    const before = events.filter((e) => e.fn === 'work').length;
    await workQueue.sendMessage('this is *not* base64!');
    const tag = randomUUID();
    await workQueue.sendMessage(b64(JSON.stringify({ tag })));
    await host.whenIdle({ timeoutMs: 5000 });
    expect(await peekAll(poisonQueue)).toContain('this is *not* base64!');
    const after = events.filter((e) => e.fn === 'work').slice(before);
    expect(after.map((e) => e.input)).toEqual([{ tag }]);
    expect((await fetch(`${host.url}/api/items/1`)).status).toBe(200);
  });

  it('passes non-JSON text through as a string', async () => {
    await workQueue.sendMessage(b64('plain text'));
    await until('plain message', () => events.some((e) => e.fn === 'work' && e.input === 'plain text'));
  });
});

describe('local Functions host start-up errors', () => {
  it('reports an unset %SETTING% in a schedule', async () => {
    await expect(
      startHost({ entry, port: 0, settings: { FixtureStorage: inject('storageConnectionString'), WORK_QUEUE: 'w' }, hostJson: {}, log: () => {} }),
    ).rejects.toThrow(/%TICK_SCHEDULE% but app setting TICK_SCHEDULE is not set/);
  });

  it('reports a busy port clearly', async () => {
    const settings = { FixtureStorage: inject('storageConnectionString'), WORK_QUEUE: `w-${randomUUID().slice(0, 8)}`, TICK_SCHEDULE: '0 0 0 1 1 *' };
    const first = await startHost({ entry, port: 0, settings, hostJson: {}, log: () => {}, queues: false });
    try {
      await expect(startHost({ entry, port: first.port, settings, hostJson: {}, log: () => {}, queues: false })).rejects.toThrow(
        new RegExp(`port ${first.port} on 127.0.0.1 is already in use`),
      );
    } finally {
      await first.stop();
    }
  });
});

describe('npm start demo orchestration (against a stand-in app with the real routes and function names)', () => {
  it('seeds the workspace, connects the demo container, syncs and lists parquet files that DuckDB can query', async () => {
    const connectionString = inject('storageConnectionString');
    // The stand-in app reads process.env like the real one (start.ts copies settings there).
    process.env.AzureWebJobsStorage = connectionString;
    process.env.EXPORT_QUEUE_NAME = `export-jobs-${randomUUID().slice(0, 8)}`;
    const { runDemo } = await import('../../src/local/start.js');
    const { listExport, queryDemoExport } = await import('../../src/local/query.js');
    const exportApp = fileURLToPath(new URL('./fixtures/export-app.ts', import.meta.url));
    const host = await startHost({
      entry: exportApp,
      port: 0,
      settings: { AzureWebJobsStorage: connectionString, EXPORT_SCHEDULE: '0 0 0 1 1 *' },
      hostJson: { extensions: { queues: { maxPollingInterval: '00:00:00.100' } } },
      log: () => {},
    });
    try {
      const said: string[] = [];
      await runDemo(host, connectionString, (t) => said.push(t));
      const files = await listExport(connectionString);
      expect(files.map((f) => f.name.replace(/_v4_1_\d+\.parquet$/, '')).sort()).toEqual(
        ['attributes', 'deliveries', 'delivery_contents', 'events', 'metrics', 'outputs', 'people', 'subjects'].map((n) => `exports/${n}`),
      );
      expect(files.find((f) => f.name.includes('people_'))!.rows).toBe(300);
      expect(said.join('\n')).toContain('node dist/src/local/query.js');
      const r = await queryDemoExport(connectionString, 'select count(*) as n from people');
      expect(r.views).toContain('content');
      expect(Number(r.rows[0][0])).toBe(300);
    } finally {
      await host.stop();
    }
  });
});
