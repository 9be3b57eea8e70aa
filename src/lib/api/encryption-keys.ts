// Operations on SAS_ENCRYPTION_KEY rotation (src/lib/integration/key-rotation.ts): how many stored
// SAS URLs still use an earlier key, and re-encrypting them all under the current one.
import type { Services } from '../services.js';
import type { AdminAnswer } from './admin.js';

/** GET /api/operations/encryption-keys */
export async function encryptionKeyStatus(services: Pick<Services, 'keyRotation'>): Promise<AdminAnswer> {
  return { status: 200, body: await services.keyRotation.status() };
}

/** POST /api/operations/encryption-keys/reencrypt */
export async function reencryptSasUrls(services: Pick<Services, 'keyRotation'>): Promise<AdminAnswer> {
  return { status: 200, body: await services.keyRotation.reencrypt() };
}
