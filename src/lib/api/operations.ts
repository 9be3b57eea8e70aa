// Operations API for the platform team (issue 6): every integration with its lag, an export queued
// now, the poison queue listed and replayed. Each call answers {status, body} like admin.ts.
import type { QueueClient } from '@azure/storage-queue';
import { z } from 'zod';
import type { Services } from '../services.js';
import type { AdminAnswer } from './admin.js';
import { parseFileTypeParam, type Integration } from '../integration/settings.js';
import { integrationStatus } from './status.js';
import { parseExportMessage, type ExportJob } from '../export/message.js';
import { V1_FILE_TYPES, type FileType, type SchemaVersion } from '../contract/schemas.js';
import { fieldErrors } from '../contract/ingest-schemas.js';
import type { FileLag, IntegrationLag as IntegrationLagShape } from '../contract/api-shapes.js';
import { UserError } from '../platform/errors.js';
import { redact } from '../platform/redaction.js';

export const DEFAULT_LIST_LIMIT = 1000;
export const DEFAULT_REPLAY_MAX = 1000;
/** Storage queues peek at most 32 messages at once. */
export const POISON_PEEK_MAX = 32;
/** How long a replay keeps the messages it received hidden from others (then they reappear). */
const REPLAY_VISIBILITY_SECONDS = 300;
const STATUS_CONCURRENCY = 16;
/** Undecodable poison text is shown cut to this many characters. */
const TEXT_PREVIEW = 500;

// `code` is the function key when given as ?code=; other unknown query parameters are ignored.
export const listQuery = z.object({ limit: z.coerce.number().int().min(1).max(10_000).default(DEFAULT_LIST_LIMIT) });
export const replayBody = z.strictObject({ max: z.number().int().min(1).max(10_000).optional() });

export const poisonQueueName = (exportQueueName: string) => `${exportQueueName}-poison`;

export type { FileLag } from '../contract/api-shapes.js';
export type IntegrationLag = IntegrationLagShape<FileType> & { schemaVersion: SchemaVersion };

type ListedIntegration = Pick<Integration, 'workspaceId' | 'enabled' | 'schemaVersion'>;

export interface IntegrationList {
  integrations: IntegrationLag[];
  count: number;
  /** More integrations exist than `limit`. */
  truncated: boolean;
}

export interface PoisonMessage {
  id: string;
  insertedOn: string | null;
  expiresOn: string | null;
  dequeueCount: number;
  /** A valid export message: the job it asks for. */
  job: ExportJob | null;
  /** Not a valid export message: its text (SAS parameters redacted, cut) and what is wrong with it. */
  text?: string;
  issues?: string[];
}

export interface PoisonList {
  queue: string;
  /** Approximate number of messages in the poison queue (visible or not). */
  count: number;
  messages: PoisonMessage[];
}

export interface ReplayResult {
  replayed: number;
  skipped: number;
}

function parse<T extends z.ZodType>(schema: T, value: unknown, what: string): z.infer<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new UserError('invalid_request', `the ${what} request was rejected`, 400, fieldErrors(parsed.error));
  return parsed.data;
}

/** A request body that may be empty (= `{}`). */
function parseOptionalJson(text: string): unknown {
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new UserError('invalid_json', 'the body is not valid JSON');
  }
}

/** A queue message's text → the export job it carries, or why it carries none (base64 JSON; raw JSON accepted). */
export function decodeExportMessage(messageText: string): { job: ExportJob } | { job: null; text: string; issues: string[] } {
  const compact = messageText.replace(/\s+/g, '');
  const base64 = compact.length > 0 && /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(compact);
  const fromBase64 = base64 ? Buffer.from(compact, 'base64').toString('utf8') : undefined;
  for (const text of fromBase64 === undefined ? [messageText] : [fromBase64, messageText]) {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      continue;
    }
    const parsed = parseExportMessage(value);
    return parsed.success ? { job: parsed.data } : { job: null, text: preview(text), issues: parsed.issues };
  }
  const readable = fromBase64 !== undefined && !fromBase64.includes('\uFFFD') ? fromBase64 : messageText;
  return { job: null, text: preview(readable), issues: ['(message): not JSON'] };
}

const preview = (text: string) => redact(text.length > TEXT_PREVIEW ? `${text.slice(0, TEXT_PREVIEW)}…` : text);

/** Runs `work` over `items`, at most `limit` at a time, keeping the order of the results. */
async function mapLimited<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export class Operations {
  private readonly poisonQueue: QueueClient;

  constructor(
    private readonly services: Pick<Services, 'config' | 'storage' | 'integrations' | 'cursors' | 'source' | 'clock' | 'exporter'>,
    poisonQueue?: QueueClient,
  ) {
    this.poisonQueue = poisonQueue ?? services.storage.queue(poisonQueueName(services.config.exportQueueName));
  }

  /** GET /api/operations/integrations: every integration (up to `limit`) with the lag of each enabled file. */
  async integrations(query: Record<string, string>): Promise<AdminAnswer> {
    const { limit } = parse(listQuery, query, 'integrations listing');
    const listed: ListedIntegration[] = [];
    let truncated = false;
    for await (const i of this.services.integrations.list()) {
      if (listed.length === limit) {
        truncated = true;
        break;
      }
      listed.push(i);
    }
    const rows = await mapLimited(listed, STATUS_CONCURRENCY, (i) => this.lag(i));
    const integrations = rows.filter((r): r is IntegrationLag => r !== undefined);
    const body: IntegrationList = { integrations, count: integrations.length, truncated };
    return { status: 200, body };
  }

  private async lag(listed: ListedIntegration): Promise<IntegrationLag | undefined> {
    const { workspaceId } = listed;
    let status: Awaited<ReturnType<typeof integrationStatus>>;
    try {
      status = await integrationStatus(this.services, workspaceId);
    } catch (e) {
      // Deleted between the listing and its status: no longer an integration.
      if (e instanceof UserError && e.code === 'integration_not_found') return undefined;
      // One unreadable integration must not hide the others.
      return {
        workspaceId,
        enabled: listed.enabled,
        schemaVersion: listed.schemaVersion,
        container: '',
        blobPath: '',
        warnings: [],
        pendingChanges: 0,
        maxLagSeconds: 0,
        files: {},
        error: { code: 'status_unavailable', message: redact(`the status could not be read: ${(e as Error)?.message ?? String(e)}`) },
      };
    }
    const files: Partial<Record<FileType, FileLag>> = {};
    for (const [fileType, f] of Object.entries(status.files) as [FileType, (typeof status.files)[FileType]][]) {
      if (!f.enabled) continue;
      files[fileType] = { pendingChanges: f.pendingChanges, lagSeconds: f.lagSeconds, running: f.running, lastError: f.lastError?.code ?? null };
    }
    const lags = Object.values(files);
    return {
      workspaceId,
      enabled: status.enabled,
      schemaVersion: status.schemaVersion,
      container: status.destination.container,
      blobPath: status.destination.blobPath,
      warnings: status.warnings,
      pendingChanges: lags.reduce((n, f) => n + f.pendingChanges, 0),
      maxLagSeconds: lags.reduce((n, f) => Math.max(n, f.lagSeconds), 0),
      files,
    };
  }

  /** POST /api/workspaces/{ws}/integration/files/{fileType}/sync: queue an export of the pair now. */
  async syncNow(workspaceId: number, fileTypeToken: string | undefined): Promise<AdminAnswer> {
    const fileType = parseFileTypeParam(fileTypeToken);
    const integration = await this.services.integrations.require(workspaceId);
    if (!integration.enabled) {
      throw new UserError('integration_disabled', `the sync of workspace ${workspaceId} is disabled; enable it with POST .../integration/enable first`, 409);
    }
    if (integration.schemaVersion === 'v1' && !V1_FILE_TYPES.includes(fileType)) {
      throw new UserError('file_not_in_schema', `schema v1 has no ${fileType} file; upgrade to v4 first`, 409);
    }
    if (!integration.files.includes(fileType)) {
      throw new UserError('file_disabled', `${fileType} is turned off for workspace ${workspaceId}; turn it on with PUT .../integration/files/${fileType} {"enabled": true}`, 409);
    }
    await this.services.exporter().enqueue({ workspaceId, fileType });
    return { status: 202, body: { queued: true, workspaceId, fileType } };
  }

  /** GET /api/operations/poison: how many messages the poison queue holds and the first 32, decoded. */
  async poison(): Promise<AdminAnswer> {
    const [properties, peeked] = await Promise.all([
      this.poisonQueue.getProperties(),
      this.poisonQueue.peekMessages({ numberOfMessages: POISON_PEEK_MAX }),
    ]);
    const messages: PoisonMessage[] = peeked.peekedMessageItems.map((m) => ({
      id: m.messageId,
      insertedOn: m.insertedOn?.toISOString() ?? null,
      expiresOn: m.expiresOn?.toISOString() ?? null,
      dequeueCount: m.dequeueCount,
      ...decodeExportMessage(m.messageText),
    }));
    const body: PoisonList = { queue: this.poisonQueue.name, count: Math.max(properties.approximateMessagesCount ?? 0, messages.length), messages };
    return { status: 200, body };
  }

  /**
   * POST /api/operations/poison/replay {max?}: valid export messages go back to the export queue
   * (sent before they are deleted from poison, so a crash in between duplicates a job, which the
   * exporter's lease and cursor make harmless, and never loses one); anything else stays in poison.
   */
  async replay(bodyText: string): Promise<AdminAnswer> {
    const max = parse(replayBody, parseOptionalJson(bodyText), 'replay').max ?? DEFAULT_REPLAY_MAX;
    const exporter = this.services.exporter();
    const skipped: { messageId: string; popReceipt: string }[] = [];
    let replayed = 0;
    try {
      while (replayed < max) {
        // Received messages stay hidden for the whole replay, so each is looked at once.
        const { receivedMessageItems: batch } = await this.poisonQueue.receiveMessages({
          numberOfMessages: Math.min(POISON_PEEK_MAX, max - replayed),
          visibilityTimeout: REPLAY_VISIBILITY_SECONDS,
        });
        if (batch.length === 0) break;
        await Promise.all(
          batch.map(async (m) => {
            const decoded = decodeExportMessage(m.messageText);
            if (!decoded.job) {
              skipped.push({ messageId: m.messageId, popReceipt: m.popReceipt });
              return;
            }
            await exporter.enqueue(decoded.job);
            replayed++;
            await this.poisonQueue.deleteMessage(m.messageId, m.popReceipt);
          }),
        );
      }
    } finally {
      // Skipped messages are visible again at once, for the next listing.
      await Promise.all(skipped.map((m) => this.poisonQueue.updateMessage(m.messageId, m.popReceipt, undefined, 0).catch(() => undefined)));
    }
    const result: ReplayResult = { replayed, skipped: skipped.length };
    return { status: 200, body: result };
  }
}
