// The app's HTTP API as the CLI sees it: JSON in and out, the function key in x-functions-key,
// every failure an ApiError carrying the API's own code and message.
import { apiErrorOf, parseJsonText } from '../lib/contract/api-shapes.js';

export class ApiError extends Error {
  constructor(
    /** HTTP status; 0 when the API could not be reached. */
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface ApiOptions {
  /** e.g. http://127.0.0.1:7071 (routes are under /api). */
  baseUrl: string;
  key?: string;
  fetch?: typeof fetch;
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 60_000;

export class Api {
  private readonly baseUrl: string;

  constructor(private readonly options: ApiOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  post<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>('POST', path, body ?? {});
  }

  /** `path` is below /api, e.g. `/operations/poison`. */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const url = `${this.baseUrl}/api${path}`;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.options.key) headers['x-functions-key'] = this.options.key;
    let response: Response;
    try {
      response = await (this.options.fetch ?? fetch)(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.options.timeoutMs ?? DEFAULT_TIMEOUT_MS),
      });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (e as Error).message;
      throw new ApiError(0, 'unreachable', `cannot reach the API at ${this.baseUrl} (${why}); check --url or WAREHOUSE_API_URL`);
    }
    const text = await response.text();
    const json = parseJsonText(text);
    if (response.ok) {
      if (json === undefined && text) throw new ApiError(response.status, 'not_json', `${method} ${path} answered ${response.status} with a body that is not JSON`);
      return json as T;
    }
    const error = apiErrorOf(json);
    if (error) throw new ApiError(response.status, error.code, error.message, error.details);
    if (response.status === 401 || response.status === 403) {
      throw new ApiError(response.status, 'unauthorized', `the API refused the request (HTTP ${response.status}); give a valid function key with --key or WAREHOUSE_API_KEY`);
    }
    throw new ApiError(response.status, `http_${response.status}`, `${method} ${path} failed with HTTP ${response.status} ${response.statusText}`.trim());
  }
}
