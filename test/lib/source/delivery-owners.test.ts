// The delivery index (delivery_id → internal_customer_id) replayed from the deliveries log, on Azurite:
// a time-bounded catch-up resumes where it stopped, concurrent catch-ups converge, a later version wins.
import { beforeAll, describe, expect, it } from 'vitest';
import { SourceLog } from '../../../src/lib/source/source-log.js';
import { DeliveryOwners } from '../../../src/lib/source/delivery-owners.js';
import { freshWorkspace, testConfig, testStorage } from '../../support/env.js';

let log: SourceLog;
let owners: DeliveryOwners;
beforeAll(async () => {
  const storage = await testStorage(testConfig());
  log = new SourceLog(storage);
  owners = new DeliveryOwners(storage, log);
});

const deliveries = (from: number, n: number, who = (i: number) => `p${i % 7}`) =>
  Array.from({ length: n }, (_, k) => ({ delivery_id: `d${from + k}`, internal_customer_id: who(from + k) }));

describe('delivery owners', () => {
  it('a catch-up past its deadline stops after a chunk and the next call continues; every delivery ends up indexed', async () => {
    const ws = freshWorkspace();
    await log.append(ws, [{ fileType: 'deliveries', records: deliveries(0, 2500) }]);
    await log.append(ws, [{ fileType: 'deliveries', records: [{ delivery_id: 'd-anon' }] }]);
    expect(await owners.catchUp(ws, () => 1, 0)).toBe(false); // deadline already passed: one chunk only
    const partial = await owners.owners(ws, ['d0', 'd2499']);
    expect(partial.get('d0')).toBe('p0');
    expect(partial.has('d2499')).toBe(false);
    expect(await owners.catchUp(ws)).toBe(true);
    const all = await owners.owners(ws, [...deliveries(0, 2500).map((d) => d.delivery_id), 'd-anon', 'd-missing']);
    expect(all.size).toBe(2501);
    expect(all.get('d2499')).toBe(`p${2499 % 7}`);
    expect(all.get('d-anon')).toBeNull();
    expect(all.has('d-missing')).toBe(false);
  });

  it('concurrent catch-ups converge, and a later version of a delivery moves it to its new person', async () => {
    const ws = freshWorkspace();
    await log.append(ws, [{ fileType: 'deliveries', records: deliveries(0, 300) }]);
    await log.append(ws, [{ fileType: 'deliveries', records: [{ delivery_id: 'd5', internal_customer_id: 'moved' }] }]);
    expect(await Promise.all([owners.catchUp(ws), owners.catchUp(ws), owners.catchUp(ws)])).toEqual([true, true, true]);
    const all = await owners.owners(ws, deliveries(0, 300).map((d) => d.delivery_id));
    expect(all.size).toBe(300);
    expect(all.get('d5')).toBe('moved');
    expect(all.get('d6')).toBe('p6');
  });
});
