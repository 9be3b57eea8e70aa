// Container SAS URLs: parse and check them before anything is stored (redaction lives in platform/redaction.ts).
import { UserError } from '../platform/errors.js';

export interface ContainerSas {
  /** Blob service endpoint + container, without the query. */
  containerUrl: string;
  account: string;
  container: string;
  permissions?: string;
  policyId?: string;
  expiresOn?: Date;
  startsOn?: Date;
}

const REQUIRED_PERMISSIONS = ['r', 'a', 'c', 'w', 'l'] as const;
const PERMISSION_NAMES: Record<string, string> = { r: 'read', a: 'add', c: 'create', w: 'write', l: 'list' };

const isLoopback = (host: string) => host === '127.0.0.1' || host === 'localhost' || host === '[::1]';

/** Checks the form of a container SAS URL (no network). Throws a UserError with a stable code. */
export function parseContainerSas(sasUrl: string, now: number): ContainerSas {
  let url: URL;
  try {
    url = new URL(sasUrl);
  } catch {
    throw new UserError('sas_not_url', 'sasUrl is not a URL: paste the Blob SAS URL of your container');
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopback(url.hostname))) {
    throw new UserError('sas_not_https', 'sasUrl must use https (plain http is accepted only for the local storage emulator)');
  }
  const q = url.searchParams;
  if (!q.get('sig')) {
    throw new UserError('sas_missing_query', 'sasUrl has no shared access signature: generate a SAS for the container and paste the whole URL including its query string');
  }
  if (q.has('ss') || q.has('srt')) {
    throw new UserError('sas_account_sas', 'sasUrl is an account SAS; a container SAS is required, so that this integration can reach only the one container you choose. In the Azure portal, right-click the container and select Generate SAS');
  }
  // Path: /<container> on Azure, /<account>/<container> on the emulator (path-style).
  const segments = url.pathname.split('/').filter(Boolean);
  const pathStyle = isLoopback(url.hostname);
  const account = pathStyle ? segments[0] : url.hostname.split('.')[0];
  const container = pathStyle ? segments[1] : segments[0];
  const extra = pathStyle ? segments.slice(2) : segments.slice(1);
  if (q.get('sr') !== 'c' || !container || extra.length > 0) {
    throw new UserError('sas_not_container', 'sasUrl must be a SAS for a container (sr=c), not for a single blob or directory: right-click the container and select Generate SAS');
  }
  const policyId = q.get('si') ?? undefined;
  const permissions = q.get('sp') ?? undefined;
  if (!policyId) {
    const missing = REQUIRED_PERMISSIONS.filter((p) => !(permissions ?? '').includes(p));
    if (missing.length) {
      throw new UserError('sas_missing_permissions', `the SAS does not grant ${missing.map((p) => PERMISSION_NAMES[p]).join(', ')}; it must grant read, add, create, write and list`, 400, [{ path: 'sasUrl', message: `missing permissions: ${missing.map((p) => PERMISSION_NAMES[p]).join(', ')}` }]);
    }
  }
  const expiresOn = q.get('se') ? new Date(q.get('se')!) : undefined;
  const startsOn = q.get('st') ? new Date(q.get('st')!) : undefined;
  if (expiresOn && !Number.isNaN(expiresOn.getTime()) && expiresOn.getTime() <= now) {
    throw new UserError('sas_expired', `the SAS expired on ${expiresOn.toISOString()}; generate a new one (a stored access policy lets you choose a longer expiry)`);
  }
  if (startsOn && !Number.isNaN(startsOn.getTime()) && startsOn.getTime() > now + 5 * 60_000) {
    throw new UserError('sas_not_yet_valid', `the SAS is not valid before ${startsOn.toISOString()}`);
  }
  return {
    containerUrl: `${url.origin}${url.pathname.replace(/\/$/, '')}`,
    account,
    container,
    permissions,
    policyId,
    expiresOn,
    startsOn,
  };
}

/** A blob path inside the container: "" (root) or segments without traversal or odd characters. */
export function normalizeBlobPath(path: string | undefined): string {
  const p = (path ?? '').trim();
  if (p === '') return '';
  if (p.length > 512) throw new UserError('blob_path_invalid', 'blobPath is longer than 512 characters');
  if (p.startsWith('/')) throw new UserError('blob_path_invalid', 'blobPath must not start with a slash; give a path inside the container such as "exports/warehouse"');
  if (p.includes('\\')) throw new UserError('blob_path_invalid', 'blobPath must use forward slashes');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(p)) throw new UserError('blob_path_invalid', 'blobPath contains control characters');
  const segments = p.replace(/\/+$/, '').split('/');
  if (segments.some((s) => s === '' || s === '.' || s === '..')) {
    throw new UserError('blob_path_invalid', 'blobPath must not contain empty, "." or ".." segments');
  }
  return segments.join('/');
}
