import { createHmac, createCipheriv, createDecipheriv, randomBytes, createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';

const PREFIX = 'enc:v1:';

/** True for a value in the stored (encrypted) form, whatever key encrypted it. */
export function isEncryptedValue(value: string): boolean {
  return value.startsWith(PREFIX);
}

/**
 * Secrets at rest (LDAP bind passwords, S3 secret keys, upstream passwords): AES-256-GCM with a
 * key from STOWAGE_SECRET_KEY (any string, hashed to 32 bytes) or `<dataDir>/secret.key`,
 * created on first use. Several nodes must share the key (give it by environment).
 */
export class Secrets {
  private readonly key: Buffer;

  constructor(dataDir: string, envKey?: string) {
    if (envKey) {
      this.key = createHash('sha256').update(envKey).digest();
    } else {
      const file = path.join(dataDir, 'secret.key');
      if (!existsSync(file)) {
        mkdirSync(dataDir, { recursive: true });
        try {
          writeFileSync(file, randomBytes(32).toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
        } catch (e) {
          // Another process sharing the data directory created it first: use theirs.
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        }
      }
      this.key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
      if (this.key.length !== 32) throw new Error(`${file} does not hold a 32-byte base64 key`);
    }
  }

  /** A key for one purpose (signing tokens…), derived from the secret key: every node sharing it derives the same. */
  deriveKey(purpose: string): Buffer {
    return createHmac('sha256', this.key)
      .update('stowage:' + purpose)
      .digest();
  }

  isEncrypted(value: string): boolean {
    return isEncryptedValue(value);
  }

  encrypt(plain: string): string {
    if (this.isEncrypted(plain)) return plain;
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv, { authTagLength: 16 });
    const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return PREFIX + Buffer.concat([iv, c.getAuthTag(), body]).toString('base64');
  }

  /** Plain values (written before encryption existed) pass through unchanged. */
  decrypt(value: string): string {
    if (!this.isEncrypted(value)) return value;
    const raw = Buffer.from(value.slice(PREFIX.length), 'base64');
    // IV (12) + a full 16-byte tag: a shorter tag would be accepted by GCM and is far easier to forge.
    if (raw.length < 28) throw new Error('Encrypted secret is truncated');
    const d = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, 12), { authTagLength: 16 });
    d.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([d.update(raw.subarray(28)), d.final()]).toString('utf8');
  }
}
