// A refusal as a person reads it: the API's code and message, its details, and what to do about it
// (the wording of the product's troubleshooting guide).
import { ApiError } from './api.js';
import { h } from './dom.js';

const FIX: Record<string, string> = {
  sas_not_url: 'Paste the whole Blob SAS URL of the container, as the Azure portal shows it after “Generate SAS token and URL”.',
  sas_not_https: 'Generate the SAS with the HTTPS protocol.',
  sas_missing_query: 'The URL has no token. Copy the “Blob SAS URL”, not the container URL.',
  sas_account_sas: 'You must generate an SAS URL for a container, not a storage account: right-click the container in Storage browser and choose “Generate SAS”.',
  sas_not_container: 'Right-click the container itself (not a blob or folder) and choose “Generate SAS”.',
  sas_missing_permissions: 'Your access policy or SAS must grant read, add, create, write and list. Edit the access policy, or generate a new SAS URL with those permissions and paste it here.',
  sas_expired: 'Generate a new SAS URL. A stored access policy lets you choose a longer expiry and revoke the token later.',
  sas_not_yet_valid: 'Set the SAS start time to now (or earlier) and generate it again.',
  sas_policy_invalid: 'The stored access policy named in the SAS was removed, changed or expired. Restore it on the container (Access policy), or generate a new SAS URL from a current policy.',
  sas_signature_invalid: 'Generate a new SAS URL for this container (a SAS for another container, or one signed with a rotated account key, is refused).',
  sas_ip_not_allowed: 'The SAS allows other IP addresses only. Add the export service’s addresses to “Allowed IP addresses”, or remove the restriction, and generate the SAS again.',
  sas_forbidden: 'Check that the SAS grants read, add, create, write and list, has not expired, that its access policy still exists, and that no IP restriction excludes the export service.',
  container_not_found: 'Check the container name in the URL; create the container first if it does not exist.',
  blob_path_invalid: 'Use a relative folder such as “exports/warehouse”: no leading “/”, no “..”, no backslashes.',
  people_disabled_too_long: 'People was off for more than 7 days. Delete the integration, purge its files from your container, and create a new one to sync people again.',
  schema_downgrade: 'An integration on v4 cannot go back to v1.',
  integration_disabled: 'Enable the sync first.',
  unauthorized: 'Open “Access” at the top of the page and enter the function key.',
};

function detailItems(details: unknown): string[] {
  if (Array.isArray(details)) {
    return details.map((d) => (d && typeof d === 'object' && 'message' in d ? `${String((d as { path?: unknown }).path ?? '')}: ${String((d as { message: unknown }).message)}`.replace(/^: /, '') : JSON.stringify(d)));
  }
  if (details && typeof details === 'object') return Object.entries(details).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(', ') : typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
  return [];
}

/** An alert box for a failed call: code, message, details and, when known, what to fix. */
export function errorBox(e: unknown): HTMLElement {
  const err = e instanceof ApiError ? e : new ApiError(0, 'error', e instanceof Error ? e.message : String(e), []);
  const details = detailItems(err.details);
  const fix = FIX[err.code];
  return h(
    'div',
    { class: 'notice error', role: 'alert' },
    h('p', {}, h('strong', {}, 'Refused: '), err.message, ' ', h('code', {}, err.code)),
    details.length ? h('ul', { class: 'details' }, details.map((d) => h('li', {}, d))) : null,
    fix ? h('p', { class: 'fix' }, h('strong', {}, 'What to fix: '), fix) : null,
  );
}

export const noticeBox = (text: string, kind: 'ok' | 'warn' | 'info' = 'info') =>
  h('div', { class: `notice ${kind}`, role: 'status' }, h('strong', {}, kind === 'ok' ? 'Done: ' : kind === 'warn' ? 'Warning: ' : 'Note: '), text);
