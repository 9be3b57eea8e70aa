// Integration settings per workspace: the customer's container (SAS URL, encrypted at rest), the blob
// path, the enabled file types and the schema version.
import { z } from 'zod';
import { ContainerClient } from '@azure/storage-blob';
import type { AppStorage } from './storage.js';
import { TABLES } from './storage.js';
import { FILE_TYPES, SCHEMA_VERSIONS, fileTypeByName, type FileType, type SchemaVersion } from './schemas.js';
import { decryptSecret, encryptSecret } from './crypto.js';
import { normalizeBlobPath, parseContainerSas, type ContainerSas } from './sas.js';
import { UserError, isNotFound } from './errors.js';
import { fieldErrors } from './ingest-schemas.js';
import { blobName } from './naming.js';
import type { Clock } from './clock.js';

export interface Integration {
  workspaceId: number;
  /** Decrypted; for the exporter only. Never log or return it. */
  sasUrl: string;
  account: string;
  container: string;
  blobPath: string;
  files: FileType[];
  schemaVersion: SchemaVersion;
  enabled: boolean;
  sasExpiresOn?: string;
  updatedAt: number;
}

/** What may be shown: no SAS. */
export type IntegrationView = Omit<Integration, 'sasUrl'>;

const fileTypeToken = z.string().transform((s, ctx) => {
  const t = (FILE_TYPES as readonly string[]).includes(s) ? (s as FileType) : fileTypeByName(s);
  if (!t) {
    ctx.addIssue({ code: 'custom', message: `unknown file type "${s}"` });
    return z.NEVER;
  }
  return t;
});

export const putIntegrationBody = z.strictObject({
  sasUrl: z.string().min(1).max(4096),
  blobPath: z.string().max(1024).optional(),
  files: z.array(fileTypeToken).max(FILE_TYPES.length * 2).optional(),
  schemaVersion: z.enum(SCHEMA_VERSIONS as [SchemaVersion, ...SchemaVersion[]]).optional(),
});

const PROBE_BLOB = '_warehouse_export_check';

/** Writes, lists and reads a marker under the blob path: proves the SAS works and creates the path. */
export async function probeContainer(sasUrl: string, blobPath: string): Promise<void> {
  const container = new ContainerClient(sasUrl);
  const name = blobName(blobPath, PROBE_BLOB);
  const body = `written by the warehouse export to check access, ${new Date().toISOString()}\n`;
  try {
    await container.getBlockBlobClient(name).upload(body, Buffer.byteLength(body));
    let found = false;
    for await (const b of container.listBlobsFlat({ prefix: name })) if (b.name === name) found = true;
    if (!found) throw new UserError('sas_probe_failed', 'the check file was written but not listed: the SAS must grant list');
    await container.getBlockBlobClient(name).downloadToBuffer();
  } catch (e) {
    throw containerError(e);
  }
}

/** Maps a storage error from the customer's container to what the owner should fix (never the URL). */
export function containerError(e: unknown): Error {
  if (e instanceof UserError) return e;
  const status = (e as { statusCode?: number }).statusCode;
  const code = String((e as { code?: string }).code ?? '');
  if (status === 403) {
    const hint =
      code === 'AuthorizationPermissionMismatch'
        ? 'the SAS or its access policy does not grant read, add, create, write and list'
        : code === 'AuthorizationSourceIPMismatch'
          ? 'the SAS allows other IP addresses only (IP restriction)'
          : code === 'AuthenticationFailed'
            ? 'the signature was refused: the token expired, or its stored access policy was revoked or changed'
            : 'check that the SAS grants read, add, create, write and list, has not expired, that its access policy still exists, and that no IP restriction excludes us';
    return new UserError('sas_forbidden', `Azure answered 403 (${code || 'Forbidden'}): ${hint}. Generate a new SAS URL and update the integration.`, 400, { storageCode: code || undefined });
  }
  if (status === 404) {
    return new UserError('container_not_found', `the container does not exist (${code || 'NotFound'}); create it or give the SAS URL of an existing container`, 400, { storageCode: code || undefined });
  }
  const err = new Error(`customer container unreachable (${status ?? 'no status'} ${code})`);
  return err;
}

export class Integrations {
  constructor(
    private readonly storage: AppStorage,
    private readonly key: Buffer,
    private readonly clock: Clock,
    private readonly probe: (sasUrl: string, blobPath: string) => Promise<void> = probeContainer,
  ) {}

  private get table() {
    return this.storage.table(TABLES.integrations);
  }

  /** Create or replace (SAS required on every change). Validates and probes before saving. */
  async put(workspaceId: number, body: unknown): Promise<IntegrationView> {
    const parsed = putIntegrationBody.safeParse(body);
    if (!parsed.success) throw new UserError('invalid_integration', 'the integration settings were rejected; nothing was saved', 400, fieldErrors(parsed.error));
    const { sasUrl, files, schemaVersion } = parsed.data;
    const sas: ContainerSas = parseContainerSas(sasUrl, this.clock.now());
    const blobPath = normalizeBlobPath(parsed.data.blobPath);
    await this.probe(sasUrl, blobPath);
    const previous = await this.get(workspaceId);
    const integration: Integration = {
      workspaceId,
      sasUrl,
      account: sas.account,
      container: sas.container,
      blobPath,
      files: files ? FILE_TYPES.filter((t) => files.includes(t)) : [...FILE_TYPES],
      schemaVersion: schemaVersion ?? previous?.schemaVersion ?? 'v4',
      enabled: previous?.enabled ?? true,
      sasExpiresOn: sas.expiresOn?.toISOString(),
      updatedAt: this.clock.now(),
    };
    await this.table.upsertEntity(
      {
        partitionKey: String(workspaceId),
        rowKey: 'settings',
        sas: encryptSecret(sasUrl, this.key),
        account: integration.account,
        container: integration.container,
        blobPath,
        files: integration.files.join(','),
        schemaVersion: integration.schemaVersion,
        enabled: integration.enabled,
        sasExpiresOn: integration.sasExpiresOn ?? '',
        updatedAt: new Date(integration.updatedAt),
      },
      'Replace',
    );
    return view(integration);
  }

  async get(workspaceId: number): Promise<Integration | undefined> {
    try {
      const e = await this.table.getEntity<Record<string, unknown>>(String(workspaceId), 'settings');
      return this.fromEntity(e);
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  /** Every integration (the timer's fan-out reads this). */
  async *list(): AsyncGenerator<Integration> {
    for await (const e of this.table.listEntities<Record<string, unknown>>({ queryOptions: { filter: `RowKey eq 'settings'` } })) {
      yield this.fromEntity(e);
    }
  }

  private fromEntity(e: Record<string, unknown>): Integration {
    return {
      workspaceId: Number(e.partitionKey),
      sasUrl: decryptSecret(String(e.sas), this.key),
      account: String(e.account),
      container: String(e.container),
      blobPath: String(e.blobPath ?? ''),
      files: String(e.files ?? '').split(',').filter(Boolean) as FileType[],
      schemaVersion: (e.schemaVersion as SchemaVersion) ?? 'v4',
      enabled: e.enabled !== false,
      sasExpiresOn: (e.sasExpiresOn as string) || undefined,
      updatedAt: e.updatedAt instanceof Date ? e.updatedAt.getTime() : Date.parse(String(e.updatedAt)),
    };
  }
}

export function view(i: Integration): IntegrationView {
  const { sasUrl: _secret, ...rest } = i;
  return rest;
}
