// The CLI's commands: each calls the API and prints a plain-text table (or, with --json, the answer).
// Each returns the process exit code; API failures are thrown as ApiError and reported by main.ts.
import type { Api } from './api.js';
import { count, duration, plural, table, time } from './format.js';
import type { integrationStatus, FileStatus } from '../lib/api/status.js';
import type { IntegrationList, PoisonList, ReplayResult } from '../lib/api/operations.js';
import type { KeyStatus, ReencryptResult } from '../lib/integration/key-rotation.js';
import type { exportHistory } from '../lib/api/history.js';

export type ExportHistoryPage = Awaited<ReturnType<typeof exportHistory>>;

export type IntegrationStatus = Awaited<ReturnType<typeof integrationStatus>>;

export interface Output {
  write(text: string): unknown;
  isTTY?: boolean;
}

export interface CommandContext {
  api: Api;
  stdout: Output;
  json: boolean;
  sleep(ms: number): Promise<void>;
  now(): number;
  /** How often `sync --watch` polls the status. */
  pollIntervalMs: number;
}

const path = (ws: string) => `/workspaces/${encodeURIComponent(ws)}/integration`;
/** --json: the API's answer as it came; exit code 0. */
function printJson(ctx: CommandContext, value: unknown): number {
  ctx.stdout.write(JSON.stringify(value, null, 2) + '\n');
  return 0;
}
const dash = (s: string | null | undefined) => (s ? s : '-');
const destination = (container: string, blobPath: string) => (blobPath ? `${container}/${blobPath}` : container);

export async function list(ctx: CommandContext, options: { limit?: number }): Promise<number> {
  const r = await ctx.api.get<IntegrationList>(`/operations/integrations${options.limit ? `?limit=${options.limit}` : ''}`);
  if (ctx.json) return printJson(ctx, r);
  if (r.integrations.length === 0) {
    ctx.stdout.write('no integrations\n');
    return 0;
  }
  const rows = r.integrations.map((i) => {
    const files = Object.entries(i.files);
    const running = files.filter(([, f]) => f?.running).map(([t]) => t);
    const errors = [...(i.error ? [i.error.code] : []), ...files.filter(([, f]) => f?.lastError).map(([t, f]) => `${t}:${f!.lastError}`)];
    return [
      String(i.workspaceId),
      i.enabled ? 'on' : 'off',
      i.schemaVersion,
      destination(i.container, i.blobPath),
      String(files.length),
      count(i.pendingChanges),
      duration(i.maxLagSeconds),
      running.join(',') || '-',
      errors.join(',') || '-',
      i.warnings.length ? String(i.warnings.length) : '-',
    ];
  });
  ctx.stdout.write(
    table(
      [
        { title: 'WORKSPACE', align: 'right' },
        { title: 'SYNC' },
        { title: 'SCHEMA' },
        { title: 'DESTINATION' },
        { title: 'FILES', align: 'right' },
        { title: 'PENDING', align: 'right' },
        { title: 'LAG', align: 'right' },
        { title: 'RUNNING' },
        { title: 'ERRORS' },
        { title: 'WARNINGS', align: 'right' },
      ],
      rows,
    ),
  );
  ctx.stdout.write(`${plural(r.count, 'integration')}${r.truncated ? ` (only the first ${count(r.count)}; more with --limit)` : ''}\n`);
  for (const i of r.integrations) if (i.error) ctx.stdout.write(`workspace ${i.workspaceId}: ${i.error.message}\n`);
  return 0;
}

export async function show(ctx: CommandContext, workspaceId: string): Promise<number> {
  const s = await ctx.api.get<IntegrationStatus>(path(workspaceId));
  if (ctx.json) return printJson(ctx, s);
  const d = s.destination;
  const sas = [`expires ${time(d.sasExpiresOn)}`, `permissions ${dash(d.permissions)}`, ...(d.accessPolicy ? [`access policy ${d.accessPolicy}`] : [])];
  const out = [
    `workspace ${s.workspaceId}: sync ${s.enabled ? 'enabled' : 'disabled'}, schema ${s.schemaVersion}`,
    `destination  ${d.account} / ${d.container} / ${d.blobPath || '(container root)'}`,
    `SAS          ${sas.join(', ')}`,
    `created      ${time(s.createdAt)}   updated ${time(s.updatedAt)}`,
    ...s.warnings.map((w) => `warning: ${w}`),
    '',
  ];
  const files = Object.entries(s.files) as [string, FileStatus][];
  const rows = files.map(([t, f]) => [
    t,
    f.enabled ? 'on' : 'off',
    time(f.lastExportAt),
    String(f.lastSequence),
    count(f.filesExported),
    count(f.rowsExported),
    count(f.pendingChanges),
    duration(f.lagSeconds),
    f.running ? 'yes' : '-',
    f.lastError ? f.lastError.code : '-',
  ]);
  ctx.stdout.write(out.join('\n') + '\n');
  ctx.stdout.write(
    table(
      [
        { title: 'FILE' },
        { title: 'ON' },
        { title: 'LAST EXPORT' },
        { title: 'SEQUENCE', align: 'right' },
        { title: 'FILES', align: 'right' },
        { title: 'ROWS', align: 'right' },
        { title: 'PENDING', align: 'right' },
        { title: 'LAG', align: 'right' },
        { title: 'RUNNING' },
        { title: 'LAST ERROR' },
      ],
      rows,
    ),
  );
  const errors = files.filter(([, f]) => f.lastError);
  if (errors.length) {
    ctx.stdout.write('\nlast errors:\n');
    for (const [t, f] of errors) ctx.stdout.write(`  ${t}: ${f.lastError!.code} at ${time(f.lastError!.at)}: ${f.lastError!.message}\n`);
  }
  return 0;
}

interface Progress {
  elapsedSeconds: number;
  filesWritten: number;
  rowsWritten: number;
  pendingChanges: number;
  lagSeconds: number;
  running: boolean;
}

export async function sync(ctx: CommandContext, workspaceId: string, fileType: string, options: { watch: boolean; timeoutMs: number }): Promise<number> {
  // Read first, so the watch counts only what this sync writes and reports only errors that are new.
  const before = options.watch ? await ctx.api.get<IntegrationStatus>(path(workspaceId)) : undefined;
  const queued = await ctx.api.post<{ queued: boolean; workspaceId: number; fileType: string }>(`${path(workspaceId)}/files/${encodeURIComponent(fileType)}/sync`);
  if (ctx.json) ctx.stdout.write(JSON.stringify(queued) + '\n');
  else ctx.stdout.write(`queued an export of ${queued.fileType} for workspace ${queued.workspaceId}\n`);
  if (!options.watch) return 0;
  return watch(ctx, workspaceId, queued.fileType, before!.files[queued.fileType as keyof IntegrationStatus['files']], options.timeoutMs);
}

async function watch(ctx: CommandContext, workspaceId: string, fileType: string, before: FileStatus | undefined, timeoutMs: number): Promise<number> {
  const started = ctx.now();
  const tty = !ctx.json && ctx.stdout.isTTY === true;
  const baseFiles = before?.filesExported ?? 0;
  const baseRows = before?.rowsExported ?? 0;
  const earlierError = before?.lastError?.at ?? null;
  let shown = '';
  const line = (p: Progress) =>
    `[${duration(p.elapsedSeconds).padStart(6)}] ${fileType}: ${plural(p.filesWritten, 'file')}, ${plural(p.rowsWritten, 'row')} written; ` +
    `${count(p.pendingChanges)} pending, lag ${duration(p.lagSeconds)}, ${p.running ? 'running' : p.pendingChanges ? 'waiting' : 'idle'}`;
  const endLine = () => {
    if (tty && shown) ctx.stdout.write('\n');
  };
  for (;;) {
    const s = await ctx.api.get<IntegrationStatus>(path(workspaceId));
    const f = s.files[fileType as keyof IntegrationStatus['files']];
    if (!f) {
      endLine();
      ctx.stdout.write(`workspace ${workspaceId} reports no ${fileType} file any more\n`);
      return 1;
    }
    const p: Progress = {
      elapsedSeconds: Math.round((ctx.now() - started) / 1000),
      filesWritten: Math.max(0, f.filesExported - baseFiles),
      rowsWritten: Math.max(0, f.rowsExported - baseRows),
      pendingChanges: f.pendingChanges,
      lagSeconds: f.lagSeconds,
      running: f.running,
    };
    // Elapsed time and lag tick on their own: a change is a change of anything else.
    const key = JSON.stringify([p.filesWritten, p.rowsWritten, p.pendingChanges, p.running]);
    if (ctx.json) {
      if (key !== shown) ctx.stdout.write(JSON.stringify(p) + '\n');
    } else if (tty) {
      ctx.stdout.write(`\r\x1b[2K${line(p)}`);
    } else if (key !== shown) {
      ctx.stdout.write(line(p) + '\n');
    }
    shown = key;
    const failed = f.lastError && f.lastError.at !== earlierError ? f.lastError : undefined;
    if (failed) {
      endLine();
      if (ctx.json) ctx.stdout.write(JSON.stringify({ done: false, error: failed }) + '\n');
      else ctx.stdout.write(`export failed: ${failed.code}: ${failed.message}\n`);
      return 1;
    }
    if (p.pendingChanges === 0 && !p.running) {
      endLine();
      if (ctx.json) ctx.stdout.write(JSON.stringify({ ...p, done: true }) + '\n');
      else if (p.filesWritten === 0) ctx.stdout.write(`up to date: nothing to export\n`);
      else ctx.stdout.write(`done in ${duration(p.elapsedSeconds)}: ${plural(p.filesWritten, 'file')}, ${plural(p.rowsWritten, 'row')} written\n`);
      return 0;
    }
    if (ctx.now() - started >= timeoutMs) {
      endLine();
      ctx.stdout.write(`stopped watching after ${duration(timeoutMs / 1000)}: ${count(p.pendingChanges)} changes still pending (the export goes on)\n`);
      return 1;
    }
    await ctx.sleep(ctx.pollIntervalMs);
  }
}

export async function poison(ctx: CommandContext): Promise<number> {
  const r = await ctx.api.get<PoisonList>('/operations/poison');
  if (ctx.json) return printJson(ctx, r);
  ctx.stdout.write(`poison queue ${r.queue}: ${plural(r.count, 'message')}${r.count > r.messages.length ? ` (showing the first ${r.messages.length})` : ''}\n`);
  if (r.messages.length === 0) return 0;
  const preview = (text: string | undefined) => {
    const quoted = JSON.stringify(text ?? '');
    return quoted.length > 60 ? `${quoted.slice(0, 57)}...` : quoted;
  };
  const rows = r.messages.map((m) => [
    m.id,
    time(m.insertedOn),
    String(m.dequeueCount),
    m.job ? String(m.job.workspaceId) : '-',
    m.job ? m.job.fileType : '-',
    m.job ? 'valid: replay sends it back' : `invalid (${(m.issues ?? []).join('; ')}) ${preview(m.text)}`,
  ]);
  ctx.stdout.write(
    table([{ title: 'ID' }, { title: 'INSERTED' }, { title: 'DEQUEUES', align: 'right' }, { title: 'WORKSPACE', align: 'right' }, { title: 'FILE' }, { title: 'MESSAGE' }], rows),
  );
  return 0;
}

export async function replay(ctx: CommandContext, options: { max?: number }): Promise<number> {
  const r = await ctx.api.post<ReplayResult>('/operations/poison/replay', options.max ? { max: options.max } : {});
  if (ctx.json) return printJson(ctx, r);
  ctx.stdout.write(`replayed ${plural(r.replayed, 'message')} to the export queue`);
  ctx.stdout.write(r.skipped ? `; skipped ${count(r.skipped)} that ${r.skipped === 1 ? 'is not a valid export message' : 'are not valid export messages'} (left in the poison queue)\n` : '\n');
  return 0;
}

function keyLines(s: KeyStatus): string {
  const byKey = Object.entries(s.byKey).map(([id, n]) => `${id}${id === s.currentKeyId ? ' (current)' : ''}: ${count(n)}`);
  return (
    `current key ${s.currentKeyId}; previous keys ${s.previousKeyIds.join(', ') || '-'}\n` +
    `${plural(s.integrations, 'integration')}: ${count(s.onCurrentKey)} on the current key, ${count(s.onPreviousKeys)} on an earlier key${byKey.length ? ` (${byKey.join(', ')})` : ''}\n` +
    (s.onUnknownKeys ? `${count(s.onUnknownKeys)} on a key that is not configured: unreadable until it is set again in SAS_ENCRYPTION_KEYS_PREVIOUS\n` : '') +
    (s.onPreviousKeys ? 'keep SAS_ENCRYPTION_KEYS_PREVIOUS until `reencrypt` leaves none on an earlier key\n' : 'no integration needs SAS_ENCRYPTION_KEYS_PREVIOUS any more\n')
  );
}

export async function keys(ctx: CommandContext): Promise<number> {
  const s = await ctx.api.get<KeyStatus>('/operations/encryption-keys');
  if (ctx.json) return printJson(ctx, s);
  ctx.stdout.write(keyLines(s));
  return 0;
}

export async function reencrypt(ctx: CommandContext): Promise<number> {
  const r = await ctx.api.post<ReencryptResult>('/operations/encryption-keys/reencrypt');
  if (ctx.json) return printJson(ctx, r);
  ctx.stdout.write(`re-encrypted ${plural(r.reencrypted, 'SAS URL')} (${count(r.alreadyCurrent)} already current${r.rewrittenMeanwhile ? `, ${count(r.rewrittenMeanwhile)} rewritten meanwhile` : ''})\n`);
  if (r.unreadable.length) ctx.stdout.write(`unreadable (no configured key decrypts them): workspaces ${r.unreadable.join(', ')}\n`);
  ctx.stdout.write(keyLines(r.status));
  return r.unreadable.length ? 1 : 0;
}
export async function exports(ctx: CommandContext, workspaceId: string, options: { fileType?: string; limit?: number; before?: string }): Promise<number> {
  const query = new URLSearchParams();
  if (options.fileType) query.set('fileType', options.fileType);
  if (options.limit) query.set('limit', String(options.limit));
  if (options.before) query.set('before', options.before);
  const r = await ctx.api.get<ExportHistoryPage>(`${path(workspaceId)}/exports${query.size ? `?${query}` : ''}`);
  if (ctx.json) return printJson(ctx, r);
  if (r.entries.length === 0) {
    ctx.stdout.write('no exports yet\n');
    return 0;
  }
  const rows = r.entries.map((e) =>
    e.outcome === 'failed'
      ? [time(e.at), e.fileType, 'failed', '-', '-', '-', '-', `${e.error.code}: ${e.error.message}`]
      : [time(e.committedAt), e.fileType, e.kind, String(e.sequence), count(e.rows), count(e.bytes), e.lagSeconds === null ? '-' : duration(e.lagSeconds), e.name],
  );
  ctx.stdout.write(
    table(
      [{ title: 'AT' }, { title: 'FILE' }, { title: 'KIND' }, { title: 'SEQUENCE', align: 'right' }, { title: 'ROWS', align: 'right' }, { title: 'BYTES', align: 'right' }, { title: 'LAG', align: 'right' }, { title: 'NAME / ERROR' }],
      rows,
    ),
  );
  if (r.next) ctx.stdout.write(`more: --before '${r.next}'\n`);
  return 0;
}
