// SAS URLs at rest: AES-256-GCM with a random 96-bit IV; the auth tag makes a wrong key fail loudly.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { SystemError } from '../platform/errors.js';

const VERSION = 'v1';

export function encryptSecret(plaintext: string, key: Buffer): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return `${VERSION}:${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64')}`;
}

export function decryptSecret(stored: string, key: Buffer): string {
  const [version, payload] = stored.split(':', 2);
  if (version !== VERSION || !payload) throw new SystemError('secret_format', 'stored secret has an unknown format');
  const raw = Buffer.from(payload, 'base64');
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
  } catch {
    throw new SystemError('secret_key_mismatch', 'a stored SAS URL cannot be decrypted: SAS_ENCRYPTION_KEY is not the key it was stored with');
  }
}
