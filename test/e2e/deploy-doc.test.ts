// docs/DEPLOY.md lists the functions a deployment shows: exactly what the app registers (names,
// triggers, routes and methods), as the local host describes them, with the deployed defaults.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeFunctions, startHost, type Host } from '../../src/local/host.js';
import { TEST_KEY } from '../support/env.js';

let host: Host;

beforeAll(async () => {
  // The settings the functions' registration reads, at their deployed defaults; nothing is polled or run.
  Object.assign(process.env, { AzureWebJobsStorage: 'UseDevelopmentStorage=true', SAS_ENCRYPTION_KEY: TEST_KEY });
  delete process.env.EXPORT_SCHEDULE;
  delete process.env.EXPORT_QUEUE_NAME;
  host = await startHost({ entry: fileURLToPath(new URL('../../src/index.ts', import.meta.url)), port: 0, timers: false, queues: false, hostJson: {}, log: () => undefined });
});

afterAll(async () => {
  await host?.stop();
});

describe('docs/DEPLOY.md', () => {
  it('lists exactly the functions the app registers', () => {
    const doc = readFileSync(new URL('../../docs/DEPLOY.md', import.meta.url), 'utf8');
    const block = /<!-- functions:[^>]*-->\n```\n([\s\S]*?)\n```/.exec(doc)?.[1];
    expect(block, 'the functions block of docs/DEPLOY.md').toBeDefined();
    const expected = describeFunctions({ url: 'https://<appName>.azurewebsites.net', functions: host.functions });
    expect(block).toBe(expected);
    expect(block!.split('\n').map((l) => l.trim().split(':')[0])).toEqual(host.functions.map((f) => f.name));
  });
});
