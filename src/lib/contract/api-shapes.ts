// SPEC section 6 as the clients see it: shapes of the API's answers and the one error shape, shared
// by the routes, the CLI and the console page (so it imports nothing, and runs in Node and browsers).

/** One file type's export state in GET .../integration. */
export interface FileStatus {
  enabled: boolean;
  everExported: boolean;
  running: boolean;
  initialSyncDone: boolean;
  lastExportAt: string | null;
  /** Sequence of the last file written (0 = none). */
  lastSequence: number;
  filesExported: number;
  rowsExported: number;
  /** Changes accepted but not exported yet, and how long the oldest of them has waited. */
  pendingChanges: number;
  lagSeconds: number;
  lastError: { code: string; message: string; at: string } | null;
}

/** `{"error": {"code", "message", "details"}}`: every refusal of the API. */
export interface ApiErrorBody {
  code: string;
  message: string;
  details: unknown;
}

/** A response body as JSON; undefined when empty or not JSON. */
export function parseJsonText(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The error of an error body, when it has the API's shape. */
export function apiErrorOf(json: unknown): ApiErrorBody | undefined {
  const error = (json as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined)?.error;
  if (!error || typeof error.code !== 'string' || typeof error.message !== 'string') return undefined;
  return { code: error.code, message: error.message, details: error.details ?? [] };
}

/** One enabled file of an integration in GET /api/operations/integrations. */
export interface FileLag {
  pendingChanges: number;
  lagSeconds: number;
  running: boolean;
  /** Code of the last error (null when the last export succeeded). */
  lastError: string | null;
}

/** One integration in GET /api/operations/integrations (F: the file type names). */
export interface IntegrationLag<F extends string = string> {
  workspaceId: number;
  enabled: boolean;
  schemaVersion: string;
  container: string;
  blobPath: string;
  warnings: string[];
  pendingChanges: number;
  maxLagSeconds: number;
  files: Partial<Record<F, FileLag>>;
  /** Its status could not be read (the others are still listed). */
  error?: { code: string; message: string };
}
