import { createCipheriv, createDecipheriv, randomBytes, createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';

const PREFIX = 'enc:v1:';

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
        writeFileSync(file, randomBytes(32).toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
      }
      this.key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
      if (this.key.length !== 32) throw new Error(`${file} does not hold a 32-byte base64 key`);
    }
  }

  isEncrypted(value: string): boolean {
    return value.startsWith(PREFIX);
  }

  encrypt(plain: string): string {
    if (this.isEncrypted(plain)) return plain;
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return PREFIX + Buffer.concat([iv, c.getAuthTag(), body]).toString('base64');
  }

  /** Plain values (written before encryption existed) pass through unchanged. */
  decrypt(value: string): string {
    if (!this.isEncrypted(value)) return value;
    const raw = Buffer.from(value.slice(PREFIX.length), 'base64');
    const d = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, 12));
    d.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([d.update(raw.subarray(28)), d.final()]).toString('utf8');
  }
}
