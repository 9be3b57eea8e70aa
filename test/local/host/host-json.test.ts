import { describe, expect, it } from 'vitest';
import { parseTimeSpan, readHostConfig } from '../../../src/local/host/host-json.js';

describe('parseTimeSpan', () => {
  it('reads hh:mm:ss[.fff], d.hh:mm:ss and milliseconds', () => {
    expect(parseTimeSpan('00:00:00.100', 'x')).toBe(100);
    expect(parseTimeSpan('00:01:30', 'x')).toBe(90_000);
    expect(parseTimeSpan('1.00:00:00', 'x')).toBe(86_400_000);
    expect(parseTimeSpan(250, 'x')).toBe(250);
  });

  it('names the setting it cannot read', () => {
    expect(() => parseTimeSpan('10s', 'functionTimeout')).toThrow('host.json: functionTimeout "10s" is not a TimeSpan');
  });
});

describe('readHostConfig', () => {
  it('applies the real host defaults', () => {
    expect(readHostConfig({})).toEqual({
      hostJson: {},
      queues: {
        batchSize: 16,
        newBatchThreshold: 8,
        maxPollingIntervalMs: 60_000,
        visibilityTimeoutMs: 0,
        maxDequeueCount: 5,
        messageEncoding: 'base64',
      },
      functionTimeoutMs: undefined,
      routePrefix: 'api',
    });
  });

  it('reads queue settings, functionTimeout and routePrefix', () => {
    const config = readHostConfig({
      functionTimeout: '00:10:00',
      extensions: {
        queues: { batchSize: 4, maxPollingInterval: '00:00:02', visibilityTimeout: 1000, maxDequeueCount: 3, messageEncoding: 'none' },
        http: { routePrefix: '/v1/' },
      },
    });
    expect(config.queues).toEqual({
      batchSize: 4,
      newBatchThreshold: 2,
      maxPollingIntervalMs: 2000,
      visibilityTimeoutMs: 1000,
      maxDequeueCount: 3,
      messageEncoding: 'none',
    });
    expect(config.functionTimeoutMs).toBe(600_000);
    expect(config.routePrefix).toBe('v1');
  });

  it('rejects settings the real host rejects', () => {
    expect(() => readHostConfig({ extensions: { queues: { batchSize: 33 } } })).toThrow('batchSize must be 1-32, got 33');
    expect(() => readHostConfig({ extensions: { queues: { messageEncoding: 'utf8' as 'none' } } })).toThrow(
      'messageEncoding must be "base64" or "none", got "utf8"',
    );
  });

  it('says which file it could not read', () => {
    expect(() => readHostConfig('/nonexistent/host.json')).toThrow('host.json: cannot read /nonexistent/host.json');
  });
});
