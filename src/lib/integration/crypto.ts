// SAS URLs at rest: AES-256-GCM with a random 96-bit IV; the auth tag makes a wrong key fail loudly.
// Each ciphertext names its key (v2:<key id>:...), so the key can be rotated: writes use the current
// key, reads also accept the previous ones (SAS_ENCRYPTION_KEYS_PREVIOUS) until everything is
// re-encrypted. v1 ciphertexts (before key ids) are tried with every key.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { SystemError } from '../platform/errors.js';

/** The current key (every write) and earlier ones (reads only). */
export interface SasKeys {
  current: Buffer;
  previous: readonly Buffer[];
}

type KeyInput = Buffer | SasKeys;
const ring = (k: KeyInput): SasKeys => (Buffer.isBuffer(k) ? { current: k, previous: [] } : k);

/** A short public name of a key (a hash prefix; says nothing about the key itself). */
export const keyId = (key: Buffer) => createHash('sha256').update('warehouse-export sas key\u0000').update(key).digest('hex').slice(0, 12);

export function encryptSecret(plaintext: string, keys: KeyInput): string {
  const key = ring(keys).current;
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return `v2:${keyId(key)}:${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64')}`;
}

/** The key id a stored secret names (undefined for v1 secrets, which name none). */
export function secretKeyId(stored: string): string | undefined {
  const [version, id] = stored.split(':', 3);
  return version === 'v2' ? id : undefined;
}

/** True when `stored` is encrypted under the current key (re-encryption has nothing to do). */
export const onCurrentKey = (stored: string, keys: KeyInput) => secretKeyId(stored) === keyId(ring(keys).current);

export function decryptSecret(stored: string, keys: KeyInput): string {
  const { current, previous } = ring(keys);
  const parts = stored.split(':');
  const [version] = parts;
  let candidates: Buffer[];
  let payload: string | undefined;
  if (version === 'v2' && parts.length === 3) {
    payload = parts[2];
    candidates = [current, ...previous].filter((k) => keyId(k) === parts[1]);
    if (!candidates.length) {
      throw new SystemError('secret_key_unknown', `a stored SAS URL is encrypted with key ${parts[1]}, which is neither SAS_ENCRYPTION_KEY nor in SAS_ENCRYPTION_KEYS_PREVIOUS`);
    }
  } else if (version === 'v1' && parts.length === 2) {
    payload = parts[1];
    candidates = [current, ...previous];
  } else {
    throw new SystemError('secret_format', 'stored secret has an unknown format');
  }
  const raw = Buffer.from(payload, 'base64');
  for (const key of candidates) {
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
      decipher.setAuthTag(raw.subarray(12, 28));
      return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
    } catch {
      // the next key
    }
  }
  throw new SystemError('secret_key_mismatch', 'a stored SAS URL cannot be decrypted: neither SAS_ENCRYPTION_KEY nor SAS_ENCRYPTION_KEYS_PREVIOUS holds the key it was stored with');
}
