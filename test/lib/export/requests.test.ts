// What an export costs in storage requests (Azure bills each one, and each waits a round trip): a
// changeset of one file, and a pair with nothing to do. Counted as the requests leave the process,
// against a real Azurite. A request added to these paths must be deliberate: the lists are exact.
import { beforeAll, describe, expect, it } from 'vitest';
import { createServices, type Services } from '../../../src/lib/services.js';
import { TABLES } from '../../../src/lib/platform/storage.js';
import { customerContainer } from '../../support/container.js';
import { freshWorkspace, testConfig, testStorage } from '../../support/env.js';
import { countRequests } from '../../../src/local/requests.js';

const delivery = (id: string, campaign = 7) => ({ delivery_id: id, internal_customer_id: `p-${id}`, delivery_type: 'email', campaign_id: campaign, created_at: '2026-01-01T00:00:00.000Z' });

let services: Services;
beforeAll(async () => {
  const config = testConfig();
  await testStorage(config);
  services = createServices(config);
});

/** The requests `fn` makes, named by method and table or container (`customer`: the workspace's own container), sorted. */
async function requestsOf(fn: () => Promise<unknown>, customer: string): Promise<string[]> {
  const names = new Map<string, string>(Object.values(TABLES).map((t) => [services.storage.table(t).tableName, t]));
  names.set(services.storage.sourceContainer.containerName, 'source-log');
  names.set(customer, 'customer');
  const log = countRequests();
  try {
    await fn();
  } finally {
    log.stop();
  }
  return log.requests.map((r) => {
    const [method, resource] = r.split(' ');
    return `${method} ${names.get(resource) ?? resource}`;
  }).sort();
}

describe('storage requests of one export invocation', () => {
  it('a changeset of one file costs 19 requests; a pair with nothing to do, 4', async () => {
    const ws = freshWorkspace();
    const c = await customerContainer();
    await services.integrations.put(ws, { sasUrl: c.sasUrl, files: ['deliveries'] });
    await services.ingest.ingest(ws, 'deliveries', [delivery('d1'), delivery('d2')]);
    const exporter = services.exporter();
    expect((await exporter.run({ workspaceId: ws, fileType: 'deliveries' }, 'w')).status).toBe('done');
    await services.ingest.ingest(ws, 'deliveries', [delivery('d2', 8), delivery('d3')]);

    let outcome;
    const changeset = await requestsOf(async () => (outcome = await exporter.run({ workspaceId: ws, fileType: 'deliveries' }, 'w')), c.client.containerName);
    expect(outcome).toMatchObject({ status: 'done', files: [{ rows: 2 }], lagSeconds: 0 });
    expect(changeset).toEqual(expectedChangeset);

    // Nothing new: the marker, the settings, the cursor and the head; nothing written.
    const nothing = await requestsOf(async () => (outcome = await exporter.run({ workspaceId: ws, fileType: 'deliveries' }, 'w')), c.client.containerName);
    expect(outcome).toMatchObject({ status: 'nothing', files: [], lagSeconds: 0 });
    expect(nothing).toEqual(['GET cursors', 'GET exportpending', 'GET integrations', 'GET sourceindex']);
  });
});

const expectedChangeset = [
  'DELETE exportpending', // the marker cleared once the pair is up to date
  'GET cursors', // the cursor and its lease
  'GET exportpending', // the marker's ETag, before the head
  'GET gonepeople', // anyone gone in the workspace (no: nothing to anonymize)
  'GET integrations', // the settings
  'GET integrations', // again just before the commit (SPEC 5.7)
  'GET integrations', // and before the checkpoint: the destination unchanged
  'GET source-log', // the one segment, whole
  'GET sourceindex', // the deliveries head: the run's target
  'GET sourceindex', // the people head: the gone index holds the state through the run's people position
  'GET sourceindex', // the segments after the cursor (one listing for the plan and the write)
  'GET sourceindex', // the head again, read to touch it (settle)
  'PATCH sourceindex', // the head touched: a commit in flight conflicts and marks the pair again
  'POST $batch', // the checkpoint and the file's history entry, one transaction
  'PUT cursors', // the lease and the run, one write
  'PUT cursors', // the run complete (the file reached its target), the lease released
  'PUT cursors', // the file's name reserved before its first block
  'PUT customer', // the block staged
  'PUT customer', // the block list committed, create-only
].sort();
