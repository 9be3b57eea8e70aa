// Where a SAS URL may send our requests: Azure Storage blob endpoints only, so what a workspace owner
// types can never make the app call an internal address (server-side request forgery).
import { UserError } from '../platform/errors.js';

/** Blob endpoint suffixes of the public and sovereign clouds (Azure Germany's was retired in 2021). */
export const BLOB_SUFFIXES = ['blob.core.windows.net', 'blob.core.chinacloudapi.cn', 'blob.core.usgovcloudapi.net'] as const;
/** Azure DNS zone endpoints: <account>.z00–z99.blob.storage.azure.net. */
const DNS_ZONE = /^z\d{2}\.blob\.storage\.azure\.net$/;
/** Storage account names: 3–24 lowercase letters and digits. */
const ACCOUNT = /^[a-z0-9]{3,24}$/;
const EMULATOR_HOSTS = ['127.0.0.1', 'localhost', '[::1]'];

export interface EndpointRules {
  /** The storage emulator's path-style loopback URLs (local runs only: ALLOW_EMULATOR_SAS_URLS). */
  allowEmulator: boolean;
}

export const DEPLOYED_RULES: EndpointRules = { allowEmulator: false };

export const isEmulatorHost = (host: string) => EMULATOR_HOSTS.includes(host);

const ACCEPTED =
  'sasUrl must point at an Azure Storage blob endpoint: https://<account>.blob.core.windows.net/<container> ' +
  '(or <account>.blob.core.chinacloudapi.cn, <account>.blob.core.usgovcloudapi.net, <account>.zNN.blob.storage.azure.net), ' +
  'as the portal shows it, without a port, user name or IP address';

/** `url`'s kind of endpoint, or a UserError `sas_not_azure_storage` (no network: nothing is requested). */
export function checkStorageEndpoint(url: URL, rules: EndpointRules = DEPLOYED_RULES): 'azure' | 'emulator' {
  if (rules.allowEmulator && isEmulatorHost(url.hostname) && url.username === '' && url.password === '') return 'emulator';
  const refuse = (why: string) => new UserError('sas_not_azure_storage', `${ACCEPTED}; ${why}`);
  if (isEmulatorHost(url.hostname)) throw refuse('the local storage emulator is accepted only in local runs');
  if (url.username !== '' || url.password !== '') throw refuse('this one carries a user name');
  if (url.port !== '') throw refuse('this one names a port');
  const host = url.hostname;
  const dot = host.indexOf('.');
  const account = host.slice(0, dot);
  const suffix = host.slice(dot + 1);
  const azure = dot > 0 && ACCOUNT.test(account) && ((BLOB_SUFFIXES as readonly string[]).includes(suffix) || DNS_ZONE.test(suffix));
  if (azure) return 'azure';
  throw refuse(`this one points at ${/^[\d.]+$|^\[/.test(host) ? 'an IP address' : 'another host'}`);
}

/** The check for a stored SAS URL (the exporter re-checks before every export). */
export function assertStorageEndpoint(sasUrl: string, rules: EndpointRules): void {
  checkStorageEndpoint(new URL(sasUrl), rules);
}
