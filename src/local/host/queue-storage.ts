// Queue storage as both the queue trigger and the queue output binding use it: one client per
// connection setting, queues created once, and message text in host.json's messageEncoding.
import { QueueServiceClient, type QueueClient } from '@azure/storage-queue';
import { HostError } from './errors.js';
import type { QueueSettings } from './host-json.js';
import type { InvocationContextLike, Registered } from './registration.js';
import type { AppSettings } from './settings.js';

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function decodeMessage(text: string, encoding: 'base64' | 'none'): string {
  if (encoding === 'none') return text;
  const compact = text.replace(/\s+/g, '');
  if (!BASE64.test(compact)) throw new HostError('message is not valid base64 (host.json messageEncoding is base64)');
  return Buffer.from(compact, 'base64').toString('utf8');
}

export function encodeMessage(text: string, encoding: 'base64' | 'none'): string {
  return encoding === 'base64' ? Buffer.from(text, 'utf8').toString('base64') : text;
}

/** Text of a queue message → what the handler receives: parsed JSON for JSON objects/arrays. */
export function queueInput(text: string): unknown {
  const t = text.trimStart();
  if (t.startsWith('{') || t.startsWith('[')) {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return text;
}

export class QueueStorage {
  private readonly clients = new Map<string, QueueServiceClient>();
  private readonly created = new Set<string>();

  constructor(
    private readonly settings: AppSettings,
    private readonly config: QueueSettings,
  ) {}

  /** The service of a binding's `connection` setting (default AzureWebJobsStorage). */
  service(connection: string | undefined): QueueServiceClient {
    const name = connection || 'AzureWebJobsStorage';
    const cached = this.clients.get(name);
    if (cached) return cached;
    const value = this.settings.get(name) ?? this.settings.get(`AzureWebJobs${name}`);
    if (!value) throw new HostError(`connection setting "${name}" is not set (looked for ${name} and AzureWebJobs${name})`);
    const client = QueueServiceClient.fromConnectionString(value);
    this.clients.set(name, client);
    return client;
  }

  async ensure(client: QueueClient): Promise<void> {
    if (this.created.has(client.url)) return;
    await client.createIfNotExists();
    this.created.add(client.url);
  }

  /** Makes the next ensure() create the queue again (after a failure that may mean it was deleted). */
  forget(client: QueueClient): void {
    this.created.delete(client.url);
  }

  /** Sends what a successful invocation returned or set on its queue output bindings. */
  async writeOutputs(fn: Registered, context: InvocationContextLike, result: unknown): Promise<void> {
    for (const [bindingName, binding] of Object.entries(fn.metadata.bindings)) {
      if (binding.direction !== 'out' || binding.type !== 'queue') continue;
      const value = bindingName === '$return' ? result : context.extraOutputs.get(bindingName);
      if (value === undefined || value === null) continue;
      const queueName = this.settings.resolve(String(binding.queueName), `${fn.metadata.name}.${bindingName}.queueName`);
      const client = this.service(binding.connection as string | undefined).getQueueClient(queueName);
      await this.ensure(client);
      for (const item of Array.isArray(value) ? value : [value]) {
        const text = typeof item === 'string' ? item : JSON.stringify(item);
        await client.sendMessage(encodeMessage(text, this.config.messageEncoding));
      }
    }
  }
}
