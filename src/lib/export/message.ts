// The export queue's messages, base64 JSON on the wire: `{workspaceId, fileType}` names a pair, never
// a destination or a credential (the worker reads the settings itself); `{shard}` and `{sweep}` are
// the timer's fan-out, expanded by workers (fanout.ts) into pair messages.
import { z } from 'zod';
import type { QueueClient } from '@azure/storage-queue';
import type { MessageSender } from '../platform/queue-sender.js';
import { FILE_TYPES, type FileType } from '../contract/schemas.js';

export interface ExportJob {
  workspaceId: number;
  fileType: FileType;
}

const exportMessage = z.strictObject({
  workspaceId: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  fileType: z.enum(FILE_TYPES),
});

export function parseExportMessage(message: unknown): { success: true; data: ExportJob } | { success: false; issues: string[] } {
  const parsed = exportMessage.safeParse(message);
  return parsed.success ? { success: true, data: parsed.data } : { success: false, issues: parsed.error.issues.map((i) => `${i.path.join('.') || '(message)'}: ${i.message}`) };
}

/** One page of a shard's pending pairs: those after RowKey `after` (absent: the first page). */
export interface ShardJob {
  shard: number;
  after?: string;
}

/** A fan-out message: expand a page of a shard, or sweep one page of integrations (`''`: the first). */
export type FanOutJob = ShardJob | { sweep: string };

// `after` is a marker's RowKey (`<workspaceId>|<fileType>`), used in a Table filter.
const shardMessage = z.strictObject({ shard: z.number().int().nonnegative(), after: z.string().regex(/^\d{1,16}\|[a-z_]{1,32}$/).optional() });
const fanOutMessage = z.union([shardMessage, z.strictObject({ sweep: z.string() })]);

export function parseFanOutMessage(message: unknown): FanOutJob | undefined {
  const parsed = fanOutMessage.safeParse(message);
  return parsed.success ? parsed.data : undefined;
}

export async function enqueueFanOut(queue: Pick<QueueClient, 'sendMessage'>, job: FanOutJob): Promise<void> {
  await queue.sendMessage(Buffer.from(JSON.stringify(job)).toString('base64'));
}

/** Queue a message for this pair (continuations, the management API and the timer's fan-out). */
export async function enqueueExport(queue: MessageSender, job: ExportJob): Promise<void> {
  const text = JSON.stringify({ workspaceId: job.workspaceId, fileType: job.fileType });
  await queue.send(Buffer.from(text).toString('base64'));
}
