// SAS encryption at rest with key ids: rotation reads old ciphertexts (v1 and v2), writes the current key.
import { createCipheriv, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decryptSecret, encryptSecret, keyId, onCurrentKey, secretKeyId } from '../../../src/lib/integration/crypto.js';

const A = Buffer.alloc(32, 1);
const B = Buffer.alloc(32, 2);

/** A secret as the app stored it before key ids (format v1). */
function v1(plaintext: string, key: Buffer): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return `v1:${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64')}`;
}

describe('SAS encryption with key rotation', () => {
  it('writes under the current key, naming it; reads with the key it names', () => {
    const stored = encryptSecret('secret', { current: B, previous: [A] });
    expect(secretKeyId(stored)).toBe(keyId(B));
    expect(onCurrentKey(stored, { current: B, previous: [A] })).toBe(true);
    expect(decryptSecret(stored, { current: A, previous: [B] })).toBe('secret');
    expect(() => decryptSecret(stored, A)).toThrow(expect.objectContaining({ code: 'secret_key_unknown' }));
  });

  it('reads v1 secrets (no key id) with the current or a previous key', () => {
    expect(decryptSecret(v1('old', A), { current: B, previous: [A] })).toBe('old');
    expect(onCurrentKey(v1('old', B), { current: B, previous: [] })).toBe(false);
    expect(() => decryptSecret(v1('old', A), B)).toThrow(expect.objectContaining({ code: 'secret_key_mismatch' }));
  });

  it('a key id says nothing of the key: a hash prefix, different per key', () => {
    expect(keyId(A)).toMatch(/^[0-9a-f]{12}$/);
    expect(keyId(A)).not.toBe(keyId(B));
    expect(encryptSecret('x', A)).not.toContain(A.toString('base64'));
  });
});
