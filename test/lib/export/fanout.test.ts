import { beforeAll, describe, expect, it } from 'vitest';
import { createServices, type Services } from '../../../src/lib/services.js';
import { fanOut } from '../../../src/lib/export/fanout.js';
import type { ExportJob } from '../../../src/lib/export/message.js';
import { customerContainer } from '../../support/container.js';
import { freshWorkspace, testConfig, testStorage } from '../../support/env.js';

let services: Services;
beforeAll(async () => {
  const config = testConfig();
  await testStorage(config);
  services = createServices(config);
});

describe('fan-out', () => {
  it('one message per (workspace, enabled file type), skipping running pairs and types v1 does not know', async () => {
    const c = await customerContainer();
    const [a, b, v1] = [freshWorkspace(), freshWorkspace(), freshWorkspace()];
    await services.integrations.put(a, { sasUrl: c.sasUrl, blobPath: 'a', files: ['deliveries', 'people'] });
    await services.integrations.put(b, { sasUrl: c.sasUrl, blobPath: 'b', files: ['events', 'delivery_contents'] });
    await services.integrations.put(v1, { sasUrl: c.sasUrl, blobPath: 'v1', schemaVersion: 'v1', files: ['subjects', 'events'] });
    // a/people is exporting right now: its lease is held.
    const cursor = await services.cursors.get(a, 'people');
    await services.cursors.save({ ...cursor, leaseOwner: 'someone', leaseUntil: Date.now() + 60_000 });

    const jobs: ExportJob[] = [];
    const result = await fanOut(services, async (job) => { jobs.push(job); });
    const mine = jobs.filter((j) => [a, b, v1].includes(j.workspaceId)).map((j) => `${j.workspaceId - a}:${j.fileType}`).sort();
    expect(mine).toEqual(['0:deliveries', '1:content', '1:events', '2:subjects']);
    expect(result.running).toBeGreaterThanOrEqual(1);
  });
});
