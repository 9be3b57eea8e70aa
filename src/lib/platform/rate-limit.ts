// Per-key request limits that hold across every instance of the app: a fixed-window counter entity
// per (limit, key, window) in Table Storage, incremented under its ETag (a lost race retries).
import type { AppStorage } from './storage.js';
import { TABLES } from './storage.js';
import type { Clock } from './clock.js';
import { UserError, isConflict, isNotFound, type ErrorDetail } from './errors.js';

export interface LimitOptions {
  /** Names the limit in the table (several limits share it). */
  name: string;
  limit: number;
  windowMs: number;
  /** What is counted, for the refusal's sentence. */
  what: string;
  /** The app setting of the limit, for the refusal's details. */
  setting: string;
}

/** 429: the caller should wait `retryAfterSeconds` (the response carries it as Retry-After). */
export class RateLimited extends UserError {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
    details: ErrorDetail[],
  ) {
    super('rate_limited', message, 429, details);
  }
}

const MAX_RACES = 20;

export class FixedWindowLimiter {
  constructor(
    private readonly storage: AppStorage,
    private readonly clock: Clock,
    private readonly options: LimitOptions,
  ) {}

  /** Counts one request of `key`; throws RateLimited when the window's limit is reached (nothing counted). */
  async take(key: string | number): Promise<void> {
    const { name, limit, windowMs, what } = this.options;
    const now = this.clock.now();
    const windowStart = Math.floor(now / windowMs) * windowMs;
    const table = this.storage.table(TABLES.rateLimits);
    const partitionKey = `${name}|${key}`;
    const rowKey = String(windowStart).padStart(15, '0');
    for (let race = 0; race < MAX_RACES; race++) {
      let entity: { count?: number; etag: string } | undefined;
      try {
        entity = await table.getEntity<{ count: number }>(partitionKey, rowKey);
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
      const count = Number(entity?.count ?? 0);
      if (count >= limit) {
        const retryAfterSeconds = Math.max(1, Math.ceil((windowStart + windowMs - now) / 1000));
        throw new RateLimited(`too many ${what} for this workspace: at most ${limit} per ${Math.round(windowMs / 1000)} seconds; try again in ${retryAfterSeconds} seconds`, retryAfterSeconds, [
          { path: this.options.setting, message: `the limit is ${limit} per ${Math.round(windowMs / 1000)} seconds (${this.options.setting}); retry after ${retryAfterSeconds} seconds` },
        ]);
      }
      try {
        if (entity) await table.updateEntity({ partitionKey, rowKey, count: count + 1 }, 'Merge', { etag: entity.etag });
        else await table.createEntity({ partitionKey, rowKey, count: 1, expiresAt: new Date(windowStart + windowMs) });
        return;
      } catch (e) {
        if (!isConflict(e)) throw e;
      }
    }
    throw new Error(`rate limit ${name}: the counter of ${key} kept changing under us`);
  }
}
