// GET .../integration: the settings (never the SAS) and, per file type, where its export stands.
import type { Services } from '../services.js';
import { FILE_TYPES, V1_FILE_TYPES, type FileType } from '../contract/schemas.js';
import type { FileStatus } from '../contract/api-shapes.js';
import { cursorFor } from '../export/cursors.js';

export const SAS_EXPIRY_WARNING_MS = 14 * 24 * 3600 * 1000;

export type { FileStatus };

export async function integrationStatus(services: Pick<Services, 'integrations' | 'cursors' | 'source' | 'clock'>, workspaceId: number) {
  const integration = await services.integrations.require(workspaceId);
  const now = services.clock.now();
  const cursors = new Map((await services.cursors.list(workspaceId)).map((c) => [c.fileType, c]));
  const files = {} as Record<FileType, FileStatus>;
  for (const fileType of FILE_TYPES) {
    if (integration.schemaVersion === 'v1' && !V1_FILE_TYPES.includes(fileType)) continue;
    // As the exporter sees it: another generation starts over, another instance's cursor counts as absent.
    const stored = cursors.get(fileType);
    const c = stored && cursorFor(stored, integration.instance, integration.generations[fileType] ?? 0);
    const head = await services.source.head(workspaceId, fileType);
    const exportedThrough = c?.lastSeq ?? 0;
    const pending = Math.max(0, head.seq - exportedThrough);
    const oldest = pending > 0 ? await services.source.oldestCommitAfter(workspaceId, fileType, exportedThrough) : undefined;
    files[fileType] = {
      enabled: integration.files.includes(fileType),
      everExported: (c?.filesExported ?? 0) > 0,
      running: (c?.leaseUntil ?? 0) > now,
      initialSyncDone: c?.initialDone ?? false,
      lastExportAt: c?.lastExportAt ? new Date(c.lastExportAt).toISOString() : null,
      lastSequence: c?.lastFileSequence ?? 0,
      filesExported: c?.filesExported ?? 0,
      rowsExported: c?.rowsExported ?? 0,
      pendingChanges: pending,
      lagSeconds: oldest ? Math.max(0, Math.round((now - oldest) / 1000)) : 0,
      lastError: c?.lastError ? { code: c.lastErrorCode ?? 'export_failed', message: c.lastError, at: new Date(c.lastErrorAt ?? 0).toISOString() } : null,
    };
  }
  const warnings: string[] = [];
  const expires = integration.sasExpiresOn ? Date.parse(integration.sasExpiresOn) : undefined;
  if (expires !== undefined && expires - now < SAS_EXPIRY_WARNING_MS) {
    warnings.push(
      expires <= now
        ? `the SAS expired on ${integration.sasExpiresOn}: exports fail until you update the integration with a new SAS URL`
        : `the SAS expires on ${integration.sasExpiresOn}: update the integration with a new SAS URL before then. To get a longer expiry, create a stored access policy on the container (read, add, create, write, list) and generate the SAS from it`,
    );
  }
  return {
    workspaceId,
    enabled: integration.enabled,
    schemaVersion: integration.schemaVersion,
    destination: {
      account: integration.account,
      container: integration.container,
      blobPath: integration.blobPath,
      sasExpiresOn: integration.sasExpiresOn ?? null,
      permissions: integration.sasPermissions ?? null,
      accessPolicy: integration.sasPolicyId ?? null,
    },
    createdAt: new Date(integration.createdAt).toISOString(),
    updatedAt: new Date(integration.updatedAt).toISOString(),
    warnings,
    files,
  };
}
