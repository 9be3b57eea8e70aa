// Rotation of SAS_ENCRYPTION_KEY: the start-up key check, how many stored SAS URLs still use an
// earlier key, and re-encrypting them under the current one (operations route and CLI). Writes of an
// integration (settings.ts) always encrypt under the current key, so each one also moves it over.
import type { AppStorage } from '../platform/storage.js';
import { TABLES } from '../platform/storage.js';
import { ConfigError, isConflict, isNotFound } from '../platform/errors.js';
import { decryptSecret, encryptSecret, keyId, onCurrentKey, secretKeyId, type SasKeys } from './crypto.js';

const KEY_CHECK = { partitionKey: '_keycheck', rowKey: 'SAS_ENCRYPTION_KEY' };
const KEY_CHECK_TEXT = 'warehouse-export key check';

export interface KeyStatus {
  currentKeyId: string;
  previousKeyIds: string[];
  integrations: number;
  onCurrentKey: number;
  /** Still encrypted under an earlier key: SAS_ENCRYPTION_KEYS_PREVIOUS must keep that key until this is 0. */
  onPreviousKeys: number;
  /** Named key is none of the configured ones: unreadable until that key is configured again (or the owner PUTs a new SAS). */
  onUnknownKeys: number;
  /** Per key id (v1 = before key ids), how many integrations use it. */
  byKey: Record<string, number>;
}

export interface ReencryptResult {
  reencrypted: number;
  alreadyCurrent: number;
  /** Changed by a concurrent write while this ran (that write used the current key). */
  rewrittenMeanwhile: number;
  /** Workspaces whose SAS none of the configured keys decrypts (left as they are). */
  unreadable: number[];
  status: KeyStatus;
}

export class SasKeyRotation {
  constructor(
    private readonly storage: AppStorage,
    private readonly keys: SasKeys,
  ) {}

  private get table() {
    return this.storage.table(TABLES.integrations);
  }

  private async *stored(): AsyncGenerator<{ partitionKey: string; sas: string; etag: string }> {
    const select = ['PartitionKey', 'RowKey', 'sas'];
    for await (const e of this.table.listEntities<{ sas?: string }>({ queryOptions: { filter: `RowKey eq 'settings'`, select } })) {
      yield { partitionKey: String(e.partitionKey), sas: String(e.sas ?? ''), etag: String(e.etag) };
    }
  }

  async status(): Promise<KeyStatus> {
    const previousKeyIds = this.keys.previous.map(keyId);
    const status: KeyStatus = { currentKeyId: keyId(this.keys.current), previousKeyIds, integrations: 0, onCurrentKey: 0, onPreviousKeys: 0, onUnknownKeys: 0, byKey: {} };
    for await (const e of this.stored()) {
      const id = secretKeyId(e.sas) ?? 'v1';
      status.integrations++;
      status.byKey[id] = (status.byKey[id] ?? 0) + 1;
      if (onCurrentKey(e.sas, this.keys)) status.onCurrentKey++;
      else if (id === 'v1' || previousKeyIds.includes(id)) status.onPreviousKeys++;
      else status.onUnknownKeys++;
    }
    return status;
  }

  /** Every stored SAS URL under the current key; then the key check too, so earlier keys may go. */
  async reencrypt(): Promise<ReencryptResult> {
    let reencrypted = 0;
    let alreadyCurrent = 0;
    let rewrittenMeanwhile = 0;
    const unreadable: number[] = [];
    for await (const e of this.stored()) {
      if (onCurrentKey(e.sas, this.keys)) {
        alreadyCurrent++;
        continue;
      }
      let plain: string;
      try {
        plain = decryptSecret(e.sas, this.keys);
      } catch {
        unreadable.push(Number(e.partitionKey));
        continue;
      }
      const sas = encryptSecret(plain, this.keys);
      try {
        await this.table.updateEntity({ partitionKey: e.partitionKey, rowKey: 'settings', sas }, 'Merge', { etag: e.etag });
        reencrypted++;
      } catch (err) {
        if (!isConflict(err) && !isNotFound(err)) throw err;
        rewrittenMeanwhile++;
      }
    }
    const status = await this.status();
    if (status.onPreviousKeys === 0 && status.onUnknownKeys === 0) await this.writeKeyCheck(true);
    return { reencrypted, alreadyCurrent, rewrittenMeanwhile, unreadable, status };
  }

  /**
   * A wrong key must stop the app before it touches any integration: a known text encrypted when the
   * store was created (or last fully re-encrypted) must decrypt with one of the configured keys.
   */
  async checkKeys(): Promise<void> {
    let stored: string | undefined;
    try {
      stored = String((await this.table.getEntity<{ value: string }>(KEY_CHECK.partitionKey, KEY_CHECK.rowKey)).value);
    } catch (e) {
      if (!isNotFound(e)) throw e;
      await this.writeKeyCheck(false);
      return;
    }
    let plain: string | undefined;
    try {
      plain = decryptSecret(stored, this.keys);
    } catch {
      plain = undefined;
    }
    if (plain !== KEY_CHECK_TEXT) {
      throw new ConfigError(
        'SAS_ENCRYPTION_KEY',
        'is not the key the stored SAS URLs were encrypted with, and SAS_ENCRYPTION_KEYS_PREVIOUS does not hold it either; set the original key (as SAS_ENCRYPTION_KEY, or in SAS_ENCRYPTION_KEYS_PREVIOUS when rotating; remove a previous key only after `npm run cli -- reencrypt` reports none left on it)',
      );
    }
  }

  private async writeKeyCheck(replace: boolean): Promise<void> {
    const entity = { ...KEY_CHECK, value: encryptSecret(KEY_CHECK_TEXT, this.keys) };
    if (replace) return void (await this.table.upsertEntity(entity, 'Replace'));
    await this.table.createEntity(entity).catch((err) => {
      if (!isConflict(err)) throw err;
    });
  }
}
