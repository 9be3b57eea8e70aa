// The app's HTTP API as the page sees it. The page holds no secret of its own: the function key (or
// a workspace owner token) the person gives it lives in sessionStorage only and goes with each call.
// A SAS URL is sent in a request body once and never kept.
import { apiErrorOf, parseJsonText, type FileStatus, type IntegrationLag as IntegrationLagShape } from '../lib/contract/api-shapes.js';
import type { FileType } from '../lib/contract/schemas.js';

export type { FileStatus };

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown,
  ) {
    super(message);
  }
}

const KEY = 'warehouse-console.key';
const TOKEN = 'warehouse-console.token';

export const auth = {
  key: () => sessionStorage.getItem(KEY) ?? '',
  token: () => sessionStorage.getItem(TOKEN) ?? '',
  setKey(key: string) {
    if (key) sessionStorage.setItem(KEY, key);
    else sessionStorage.removeItem(KEY);
  },
  setToken(token: string) {
    if (token) sessionStorage.setItem(TOKEN, token);
    else sessionStorage.removeItem(TOKEN);
  },
  /** `#token=…` in the address: kept for this tab, then removed from the address bar. */
  takeTokenFromFragment(): boolean {
    const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
    if (!m) return false;
    this.setToken(decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname + location.search + '#/');
    return true;
  },
};

/** `path` is below /api (the console lives at /api/console, so `../` of its base). */
export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  // An owner's token opens only the owner routes (/api/owner/workspaces/…, checked in the handler);
  // the function key opens the platform's routes.
  if (auth.token()) {
    headers.authorization = `Bearer ${auth.token()}`;
    if (path.startsWith('/workspaces/')) path = `/owner${path}`;
  } else if (auth.key()) headers['x-functions-key'] = auth.key();
  let response: Response;
  try {
    response = await fetch(new URL(`..${path}`, document.baseURI), { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
  } catch {
    throw new ApiError(0, 'unreachable', 'The app did not answer. Check your connection and try again.', []);
  }
  const json = parseJsonText(await response.text());
  if (response.ok) return json as T;
  const error = apiErrorOf(json);
  if (response.status === 401 || response.status === 403) {
    throw new ApiError(response.status, error?.code ?? 'unauthorized', 'The app refused the request: enter a valid function key (or open the link with your access token) under “Access”.', []);
  }
  throw new ApiError(response.status, error?.code ?? `http_${response.status}`, error?.message ?? `${method} ${path} failed with HTTP ${response.status}`, error?.details ?? []);
}

// SPEC section 2's file types, from the app's own table (plain data: it runs in the browser too).
export { FILE_TYPES, V1_FILE_TYPES, type FileType } from '../lib/contract/schemas.js';


export interface IntegrationStatus {
  workspaceId: number;
  enabled: boolean;
  schemaVersion: 'v1' | 'v4';
  destination: { account: string; container: string; blobPath: string; sasExpiresOn: string | null; permissions: string | null; accessPolicy: string | null };
  createdAt: string;
  updatedAt: string;
  warnings: string[];
  files: Partial<Record<FileType, FileStatus>>;
}

export interface Validated {
  valid: true;
  account: string;
  container: string;
  blobPath: string;
  sasExpiresOn?: string;
  permissions?: string;
  policyId?: string;
}

export interface Changed {
  startedNow: FileType[];
  notice?: string;
}

export type HistoryItem =
  | { id: string; outcome: 'failed'; fileType: FileType; kind: string | null; at: string; error: { code: string; message: string } }
  | { id: string; outcome: 'written'; fileType: FileType; kind: 'initial' | 'changeset'; at: string; name: string; sequence: number; part?: number; rows: number; bytes: number; startedAt: string; committedAt: string; lagSeconds: number | null };

export interface HistoryPage {
  entries: HistoryItem[];
  next: string | null;
}

export type IntegrationLag = IntegrationLagShape<FileType>;

export interface PoisonMessage {
  id: string;
  insertedOn: string | null;
  dequeueCount: number;
  job: { workspaceId: number; fileType: FileType } | null;
  text?: string;
  issues?: string[];
}

export const integrationPath = (ws: number) => `/workspaces/${ws}/integration`;
