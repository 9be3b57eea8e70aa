// GET .../integration/exports: the export history, newest first (SPEC section 6), from export/history.ts.
import { z } from 'zod';
import type { Services } from '../services.js';
import { fileTypeToken } from '../integration/settings.js';
import { isHistoryId, type StoredEntry } from '../export/history.js';
import { fieldErrors } from '../contract/ingest-schemas.js';
import { UserError } from '../platform/errors.js';

export const DEFAULT_HISTORY_LIMIT = 100;
export const MAX_HISTORY_LIMIT = 1000;

// `code` is the function key when given as ?code=; other unknown query parameters are ignored.
export const historyQuery = z.object({
  fileType: fileTypeToken.optional(),
  limit: z.coerce.number().int().min(1).max(MAX_HISTORY_LIMIT).default(DEFAULT_HISTORY_LIMIT),
  before: z
    .string()
    .refine((s) => isHistoryId(s) || (/^\d{4}-\d\d-\d\dT/.test(s) && !Number.isNaN(Date.parse(s))), 'must be the `next` value of a previous page or an ISO-8601 time')
    .transform((s) => (isHistoryId(s) ? s : Date.parse(s)))
    .optional(),
});

const iso = (ms: number) => new Date(ms).toISOString();

/** One entry as the API shows it: times as ISO-8601, the same fields for files and failures. */
function shown(e: StoredEntry) {
  if (e.outcome === 'failed') {
    return { id: e.id, outcome: e.outcome, fileType: e.fileType, kind: e.kind ?? null, at: iso(e.failedAt), error: { code: e.code, message: e.message } };
  }
  return {
    id: e.id,
    outcome: e.outcome,
    fileType: e.fileType,
    kind: e.kind,
    at: iso(e.committedAt),
    name: e.name,
    sequence: e.sequence,
    ...(e.part !== undefined ? { part: e.part } : {}),
    rows: e.rows,
    bytes: e.bytes,
    startedAt: iso(e.startedAt),
    committedAt: iso(e.committedAt),
    lagSeconds: e.lagSeconds,
  };
}

export type HistoryItem = ReturnType<typeof shown>;

export async function exportHistory(services: Pick<Services, 'integrations' | 'cursors'>, workspaceId: number, query: Record<string, string>) {
  const parsed = historyQuery.safeParse(query);
  if (!parsed.success) throw new UserError('invalid_query', 'the export history query was rejected', 400, fieldErrors(parsed.error));
  await services.integrations.require(workspaceId);
  const { entries, next } = await services.cursors.history.list(workspaceId, parsed.data);
  return { workspaceId, entries: entries.map(shown), next };
}
