// integration/: one workspace's integration: its settings and the rules for changing them (this
// file), container SAS URL checks (sas.ts) and the SAS's encryption at rest (crypto.ts).
//
// Integration settings per workspace and the rules for changing them (SPEC sections 4 and 6): the
// customer's container (SAS URL, encrypted at rest), blob path, enabled file types, schema version,
// whole-sync enable/disable, the People 7-day rule.
//
// "Send all history again" (re-enable, schema upgrade) is a generation bump: each file type has a
// generation here and its cursor remembers the generation it exported under; the exporter resets a
// cursor whose generation is behind. Each created integration is a new instance (an id its cursors
// carry): after DELETE and PUT, the old cursors count as absent. File sequences carry on through
// both, so no name is ever reused (export/cursors.ts, export/reservation.ts).
import { PendingPairs } from '../source/pending.js';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { AppStorage } from '../platform/storage.js';
import { sasContainer, TABLES } from '../platform/storage.js';
import { FILE_TYPES, SCHEMA_VERSIONS, V1_FILE_TYPES, fileTypeByName, type FileType, type SchemaVersion } from '../contract/schemas.js';
import { decryptSecret, encryptSecret, type SasKeys } from './crypto.js';
import { normalizeBlobPath, parseContainerSas, type ContainerSas } from './sas.js';
import { DEPLOYED_RULES, type EndpointRules } from './endpoint.js';
import { UserError, isConflict, isNotFound } from '../platform/errors.js';
import { fieldErrors } from '../contract/ingest-schemas.js';
import { blobName } from '../contract/naming.js';
import type { Clock } from '../platform/clock.js';

export const PEOPLE_REENABLE_LIMIT_MS = 7 * 24 * 3600 * 1000;

export interface Integration {
  workspaceId: number;
  /** Decrypted; for the exporter only. Never log or return it. */
  sasUrl: string;
  account: string;
  container: string;
  blobPath: string;
  /** Enabled file types, in SPEC order. */
  files: FileType[];
  schemaVersion: SchemaVersion;
  /** The whole sync (POST .../disable and .../enable). */
  enabled: boolean;
  sasExpiresOn?: string;
  sasPermissions?: string;
  sasPolicyId?: string;
  /** New for every created integration: cursors of another instance count as absent ('' = created before instances existed). */
  instance: string;
  /** Per file type: bumped when that file must be sent from the beginning of history again. */
  generations: Partial<Record<FileType, number>>;
  /** Per file type: when it was turned off (for the People 7-day rule). */
  disabledAt: Partial<Record<FileType, number>>;
  createdAt: number;
  updatedAt: number;
  etag?: string;
}

/** What may be shown: no SAS. */
export type IntegrationView = Omit<Integration, 'sasUrl' | 'etag' | 'generations' | 'instance'>;

export function view(i: Integration): IntegrationView {
  const { sasUrl: _secret, etag: _etag, generations: _g, instance: _i, ...rest } = i;
  return rest;
}

export const fileTypeToken = z.string().transform((s, ctx) => {
  const t = (FILE_TYPES as readonly string[]).includes(s) ? (s as FileType) : fileTypeByName(s);
  if (!t) {
    ctx.addIssue({ code: 'custom', message: `unknown file type "${s}"; use ${FILE_TYPES.join(', ')}` });
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
export const validateBody = z.strictObject({
  sasUrl: z.string().min(1).max(4096),
  blobPath: z.string().max(1024).optional(),
});
export const fileToggleBody = z.strictObject({ enabled: z.boolean() });
export const upgradeBody = z.strictObject({ schemaVersion: z.enum(SCHEMA_VERSIONS as [SchemaVersion, ...SchemaVersion[]]) });

function parseBody<T extends z.ZodType>(schema: T, body: unknown, what: string): z.infer<T> {
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw new UserError('invalid_body', `the ${what} request was rejected; nothing was changed`, 400, fieldErrors(parsed.error));
  return parsed.data;
}

export function parseFileTypeParam(token: string | undefined): FileType {
  const parsed = fileTypeToken.safeParse(token ?? '');
  if (!parsed.success) throw new UserError('unknown_file_type', `"${token}" is not a file type; use ${FILE_TYPES.join(', ')}`, 404);
  return parsed.data;
}

const PROBE_BLOB = '_warehouse_export_check';

/** Writes, lists and reads a marker under the blob path: proves the SAS works and creates the path. */
export async function probeContainer(sasUrl: string, blobPath: string): Promise<void> {
  // A validation answers within seconds: few retries, short tries.
  const container = sasContainer(sasUrl, { retryOptions: { maxTries: 2, tryTimeoutInMs: 15_000, retryDelayInMs: 200 } });
  const name = blobName(blobPath, PROBE_BLOB);
  const body = `written by the warehouse export to check access, ${new Date().toISOString()}\n`;
  const policy = new URL(sasUrl).searchParams.has('si');
  try {
    await container.getBlockBlobClient(name).upload(body, Buffer.byteLength(body));
    let found = false;
    for await (const b of container.listBlobsFlat({ prefix: name })) if (b.name === name) found = true;
    if (!found) throw new UserError('sas_missing_permissions', 'the check file was written but not listed: the SAS must grant list');
    await container.getBlockBlobClient(name).downloadToBuffer();
  } catch (e) {
    throw containerError(e, policy);
  }
}

/**
 * Maps a storage error from the customer's container to what the owner should fix. The message is
 * built from the error code only: storage errors can carry the request URL, and so the SAS.
 */
export function containerError(e: unknown, viaPolicy = false): Error {
  if (e instanceof UserError) return e;
  const status = (e as { statusCode?: number }).statusCode;
  const code = String((e as { code?: string }).code ?? '');
  const details = [{ message: `Azure Storage answered ${status ?? 'without a status'}${code ? ` (${code})` : ''}`, storageStatus: status, storageCode: code || undefined }];
  if (status === 403) {
    if (code === 'AuthorizationPermissionMismatch') {
      return new UserError('sas_missing_permissions', `Azure answered 403 (${code}): the SAS${viaPolicy ? "'s stored access policy" : ''} does not grant read, add, create, write and list. Edit the access policy or generate a new SAS URL and update the integration.`, 400, details);
    }
    if (code === 'AuthorizationSourceIPMismatch') {
      return new UserError('sas_ip_not_allowed', `Azure answered 403 (${code}): the SAS allows other IP addresses only; add ours to its allowed IP range or remove the restriction.`, 400, details);
    }
    if (code === 'AuthorizationFailure' || code === 'AuthenticationFailed') {
      return viaPolicy
        ? new UserError('sas_policy_invalid', `Azure answered 403 (${code}): the stored access policy of this SAS was revoked, changed or has expired (or its container was deleted). Restore the policy or generate a new SAS URL and update the integration.`, 400, details)
        : new UserError('sas_signature_invalid', `Azure answered 403 (${code}): the signature is not valid for this container (a SAS for another container, an expired token, or a rotated account key). Generate a new SAS URL for this container and update the integration.`, 400, details);
    }
    return new UserError('sas_forbidden', `Azure answered 403 (${code || 'Forbidden'}): check that the SAS grants read, add, create, write and list, has not expired, that its access policy still exists, and that no IP restriction excludes us.`, 400, details);
  }
  if (status === 404 && (code === 'ContainerNotFound' || code === 'ResourceNotFound')) {
    return new UserError('container_not_found', `the container does not exist (${code}); create it or give the SAS URL of an existing container`, 400, details);
  }
  if (status !== undefined && status >= 400 && status < 500) {
    return new UserError('sas_rejected', `Azure refused the request (${status} ${code || 'error'}): check that the SAS URL is the complete Blob SAS URL of the container, as the portal shows it`, 400, details);
  }
  if (status === undefined && /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|CERT|SELF_SIGNED/i.test(code || String((e as Error)?.message ?? ''))) {
    return new UserError('container_unreachable', `the storage account in the SAS URL cannot be reached (${code || 'network error'}): check the account name, and that its firewall admits us`, 400, [{ message: `no answer from Azure Storage (${code || 'network error'})`, storageCode: code || undefined }]);
  }
  // 5xx and timeouts: transient on Azure's side; the caller retries.
  return new Error(`customer container unreachable (${status ?? 'no status'} ${code})`);
}

export interface ChangeResult {
  integration: IntegrationView;
  /** File types to export right away (the seed's "Create and sync data"). */
  startNow: FileType[];
  notice?: string;
}

export class Integrations {
  constructor(
    private readonly storage: AppStorage,
    private readonly key: SasKeys,
    private readonly clock: Clock,
    /** Checks the container for real; the composition adds the per-workspace rate limit. */
    private readonly probe: (sasUrl: string, blobPath: string, workspaceId: number) => Promise<void> = probeContainer,
    private readonly endpoints: EndpointRules = DEPLOYED_RULES,
  ) {}

  private get table() {
    return this.storage.table(TABLES.integrations);
  }

  private get pending() {
    return new PendingPairs(this.storage);
  }

  /** POST .../validate: form checks, then the real probe; saves nothing. */
  async validate(workspaceId: number, body: unknown): Promise<{ account: string; container: string; blobPath: string; sasExpiresOn?: string; permissions?: string; policyId?: string }> {
    const { sasUrl, blobPath: rawPath } = parseBody(validateBody, body, 'validation');
    const sas = parseContainerSas(sasUrl, this.clock.now(), this.endpoints);
    const blobPath = normalizeBlobPath(rawPath);
    await this.probe(sasUrl, blobPath, workspaceId);
    return { account: sas.account, container: sas.container, blobPath, sasExpiresOn: sas.expiresOn?.toISOString(), permissions: sas.permissions, policyId: sas.policyId };
  }

  /**
   * PUT: create or replace (the SAS is required on every change). Validates and probes before saving.
   * Omitted fields take their defaults on create and keep their values on an existing integration.
   */
  async put(workspaceId: number, body: unknown): Promise<ChangeResult> {
    const { sasUrl, files, schemaVersion, blobPath: rawPath } = parseBody(putIntegrationBody, body, 'integration');
    const sas: ContainerSas = parseContainerSas(sasUrl, this.clock.now(), this.endpoints);
    const previous = await this.get(workspaceId);
    const blobPath = rawPath === undefined && previous ? previous.blobPath : normalizeBlobPath(rawPath);
    const version = schemaVersion ?? previous?.schemaVersion ?? 'v4';
    if (previous && previous.schemaVersion === 'v4' && version === 'v1') {
      throw new UserError('schema_downgrade', 'an integration on schema v4 cannot go back to v1', 409);
    }
    if (previous && previous.schemaVersion !== version) {
      throw new UserError('schema_change_via_upgrade', 'change the schema version with POST .../integration/upgrade', 409);
    }
    const now = this.clock.now();
    const enabledFiles = files ? FILE_TYPES.filter((t) => files.includes(t)) : previous ? [...previous.files] : [...FILE_TYPES];
    const disabledAt = { ...(previous?.disabledAt ?? {}) };
    if (previous) {
      for (const t of FILE_TYPES) {
        const was = previous.files.includes(t);
        const is = enabledFiles.includes(t);
        if (was && !is) disabledAt[t] = now;
        if (!was && is) {
          this.checkPeopleRule(previous, t);
          delete disabledAt[t];
        }
      }
    }
    await this.probe(sasUrl, blobPath, workspaceId);
    const integration: Integration = {
      workspaceId,
      sasUrl,
      account: sas.account,
      container: sas.container,
      blobPath,
      files: enabledFiles,
      schemaVersion: version,
      enabled: previous?.enabled ?? true,
      sasExpiresOn: sas.expiresOn?.toISOString(),
      sasPermissions: sas.policyId ? undefined : sas.permissions,
      sasPolicyId: sas.policyId,
      instance: previous?.instance ?? randomUUID(),
      generations: previous?.generations ?? {},
      disabledAt,
      createdAt: previous?.createdAt ?? now,
      updatedAt: now,
      etag: previous?.etag,
    };
    await this.save(integration, previous === undefined);
    const startNow = integration.enabled ? integration.files.filter((t) => !previous || !previous.files.includes(t) || !previous.enabled) : [];
    return { integration: view(integration), startNow: previous ? startNow : integration.files };
  }

  /** PUT .../files/{fileType} {enabled}: off keeps the cursor; on catches up (or starts with an initial sync). */
  async setFile(workspaceId: number, fileType: FileType, body: unknown): Promise<ChangeResult> {
    const { enabled } = parseBody(fileToggleBody, body, 'file toggle');
    const integration = await this.require(workspaceId);
    if (integration.schemaVersion === 'v1' && !V1_FILE_TYPES.includes(fileType)) {
      throw new UserError('file_not_in_schema', `schema v1 has no ${fileType} file; upgrade to v4 first`, 409);
    }
    const was = integration.files.includes(fileType);
    if (was === enabled) return { integration: view(integration), startNow: [] };
    const now = this.clock.now();
    if (enabled) {
      this.checkPeopleRule(integration, fileType);
      delete integration.disabledAt[fileType];
      integration.files = FILE_TYPES.filter((t) => t === fileType || integration.files.includes(t));
    } else {
      integration.disabledAt[fileType] = now;
      integration.files = integration.files.filter((t) => t !== fileType);
    }
    integration.updatedAt = now;
    await this.save(integration);
    return { integration: view(integration), startNow: enabled && integration.enabled ? [fileType] : [] };
  }

  /** POST .../disable: stops all exports (a message already queued does nothing). */
  async disable(workspaceId: number): Promise<ChangeResult> {
    const integration = await this.require(workspaceId);
    if (integration.enabled) {
      integration.enabled = false;
      integration.updatedAt = this.clock.now();
      await this.save(integration);
    }
    return { integration: view(integration), startNow: [], notice: 'Exports are stopped. Re-enabling sends all history again, as a new integration would.' };
  }

  /** POST .../enable: resends all history (generation bump); file sequences continue. */
  async enable(workspaceId: number): Promise<ChangeResult> {
    const integration = await this.require(workspaceId);
    if (integration.enabled) return { integration: view(integration), startNow: [] };
    integration.enabled = true;
    for (const t of FILE_TYPES) integration.generations[t] = (integration.generations[t] ?? 0) + 1;
    integration.updatedAt = this.clock.now();
    await this.save(integration);
    return {
      integration: view(integration),
      startNow: integration.files,
      notice: 'The next sync sends all history again, as for a new integration. Clear the files of the previous sync from your container first, so old and new files are not confused (file sequences continue; no name is reused).',
    };
  }

  /** POST .../upgrade {schemaVersion: "v4"}: v4 names and schemas from the next sync; subjects and outputs from the beginning. */
  async upgrade(workspaceId: number, body: unknown): Promise<ChangeResult> {
    const { schemaVersion } = parseBody(upgradeBody, body, 'upgrade');
    const integration = await this.require(workspaceId);
    if (schemaVersion === integration.schemaVersion) return { integration: view(integration), startNow: [] };
    if (schemaVersion === 'v1') throw new UserError('schema_downgrade', 'schema versions cannot be downgraded', 409);
    integration.schemaVersion = 'v4';
    for (const t of ['subjects', 'outputs'] as const) integration.generations[t] = (integration.generations[t] ?? 0) + 1;
    integration.updatedAt = this.clock.now();
    await this.save(integration);
    return {
      integration: view(integration),
      startNow: integration.enabled ? integration.files : [],
      notice: 'The next sync writes v4 file names (<name>_v4_<workspace_id>_<sequence>.parquet) and schemas, and sends all subjects and outputs again from the beginning of history: delete the existing rows of your subjects and outputs tables.',
    };
  }

  /**
   * DELETE: settings go; files in the customer's container are theirs and stay. The cursors stay too
   * but belong to this instance, so an integration created again starts over (and its sequences
   * carry on): nothing has to be reset, and no export in flight can undo it.
   */
  async delete(workspaceId: number): Promise<boolean> {
    try {
      await this.table.deleteEntity(String(workspaceId), 'settings');
      return true;
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
  }

  async require(workspaceId: number): Promise<Integration> {
    const integration = await this.get(workspaceId);
    if (!integration) throw new UserError('integration_not_found', `workspace ${workspaceId} has no integration; create one with PUT .../integration`, 404);
    return integration;
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

  /** Every integration (the timer's fan-out reads this). SAS URLs stay encrypted here. */
  async *list(): AsyncGenerator<Omit<Integration, 'sasUrl'>> {
    const select = ['PartitionKey', 'files', 'schemaVersion', 'enabled'];
    for await (const e of this.table.listEntities<Record<string, unknown>>({ queryOptions: { filter: `RowKey eq 'settings'`, select } })) {
      yield { ...this.fromEntity(e, false) };
    }
  }

  /** One page of integrations from a continuation token (the fan-out's sweep reads them a page at a time). */
  async page(token: string | undefined, size: number): Promise<{ integrations: Omit<Integration, 'sasUrl'>[]; next?: string }> {
    const select = ['PartitionKey', 'files', 'schemaVersion', 'enabled'];
    const pages = this.table.listEntities<Record<string, unknown>>({ queryOptions: { filter: `RowKey eq 'settings'`, select } }).byPage({ maxPageSize: size, continuationToken: token || undefined });
    const { value } = await pages.next();
    return { integrations: (value ?? []).map((e: Record<string, unknown>) => this.fromEntity(e, false)), next: value?.continuationToken };
  }

  private checkPeopleRule(integration: Integration, fileType: FileType): void {
    if (fileType !== 'people') return;
    const since = integration.disabledAt.people;
    if (since !== undefined && this.clock.now() - since > PEOPLE_REENABLE_LIMIT_MS) {
      throw new UserError(
        'people_disabled_too_long',
        `the People file has been off since ${new Date(since).toISOString()}, more than 7 days, and cannot be turned on again: delete this integration, purge its files from your container, and create a new integration`,
        409,
      );
    }
  }

  private async save(i: Integration, create = false): Promise<void> {
    const entity = {
      partitionKey: String(i.workspaceId),
      rowKey: 'settings',
      sas: encryptSecret(i.sasUrl, this.key),
      account: i.account,
      container: i.container,
      blobPath: i.blobPath,
      files: i.files.join(','),
      schemaVersion: i.schemaVersion,
      enabled: i.enabled,
      sasExpiresOn: i.sasExpiresOn ?? '',
      sasPermissions: i.sasPermissions ?? '',
      sasPolicyId: i.sasPolicyId ?? '',
      generations: JSON.stringify(i.generations),
      disabledAt: JSON.stringify(i.disabledAt),
      createdAt: new Date(i.createdAt),
      updatedAt: new Date(i.updatedAt),
      instanceId: i.instance,
    };
    try {
      // Every change may start work (an initial sync, a catch-up, an upgrade): the timer finds it by its markers.
      await this.pending.around(i.workspaceId, i.enabled ? i.files : [], async () => {
        if (create || !i.etag) await this.table.createEntity(entity);
        else await this.table.updateEntity(entity, 'Replace', { etag: i.etag });
      });
    } catch (e) {
      if (isConflict(e)) throw new UserError('concurrent_change', 'the integration was changed by another request at the same time; read it again and retry', 409);
      throw e;
    }
  }

  private fromEntity(e: Record<string, unknown>, decrypt = true): Integration {
    const time = (v: unknown) => (v instanceof Date ? v.getTime() : v ? Date.parse(String(v)) : 0);
    return {
      workspaceId: Number(e.partitionKey),
      sasUrl: decrypt ? decryptSecret(String(e.sas), this.key) : '',
      account: String(e.account ?? ''),
      container: String(e.container ?? ''),
      blobPath: String(e.blobPath ?? ''),
      files: String(e.files ?? '').split(',').filter(Boolean) as FileType[],
      schemaVersion: (e.schemaVersion as SchemaVersion) ?? 'v4',
      enabled: e.enabled !== false,
      sasExpiresOn: (e.sasExpiresOn as string) || undefined,
      sasPermissions: (e.sasPermissions as string) || undefined,
      sasPolicyId: (e.sasPolicyId as string) || undefined,
      instance: String(e.instanceId ?? ''),
      generations: e.generations ? JSON.parse(String(e.generations)) : {},
      disabledAt: e.disabledAt ? JSON.parse(String(e.disabledAt)) : {},
      createdAt: time(e.createdAt),
      updatedAt: time(e.updatedAt),
      etag: e.etag as string | undefined,
    };
  }
}
