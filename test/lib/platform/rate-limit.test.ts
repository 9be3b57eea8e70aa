// The fixed-window limiter on the test Azurite: one count across instances, a new window resets it.
import { beforeAll, describe, expect, it } from 'vitest';
import { FixedWindowLimiter, RateLimited } from '../../../src/lib/platform/rate-limit.js';
import { ManualClock } from '../../../src/lib/platform/clock.js';
import type { AppStorage } from '../../../src/lib/platform/storage.js';
import { freshWorkspace, testConfig, testStorage } from '../../support/env.js';

let storage: AppStorage;
beforeAll(async () => {
  storage = await testStorage(testConfig());
});

const options = { name: 'test', limit: 7, windowMs: 60_000, what: 'tries', setting: 'TEST_LIMIT' };

describe('FixedWindowLimiter', () => {
  it('several instances racing on one key admit exactly the limit; the rest get RateLimited with the seconds left', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1, 0, 0, 15));
    const instances = [0, 1, 2].map(() => new FixedWindowLimiter(storage, clock, options));
    const key = freshWorkspace();
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => instances[i % 3].take(key)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(7);
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason);
    expect(refused.every((e) => e instanceof RateLimited && e.status === 429 && e.retryAfterSeconds === 45)).toBe(true);
    // Another key has its own count.
    await expect(instances[0].take(freshWorkspace())).resolves.toBeUndefined();
  });

  it('the next window starts from zero', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1, 0, 0, 59));
    const limiter = new FixedWindowLimiter(storage, clock, { ...options, limit: 1 });
    const key = freshWorkspace();
    await limiter.take(key);
    await expect(limiter.take(key)).rejects.toMatchObject({ code: 'rate_limited', retryAfterSeconds: 1 });
    clock.advance(1_000);
    await expect(limiter.take(key)).resolves.toBeUndefined();
  });
});
