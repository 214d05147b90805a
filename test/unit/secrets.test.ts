/**
 * Secrets at rest (AES-256-GCM): round trip, tampering detected, plain values written before
 * encryption pass through, the key from the environment or from `<dataDir>/secret.key` (created
 * once, mode 0600, reused), and a wrong key refused rather than decrypting to garbage.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Secrets } from '../../src/security/secrets.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'stowage-secrets-'));
  dirs.push(d);
  return d;
}

describe('Secrets', () => {
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('round-trips, with a fresh IV each time', () => {
    const s = new Secrets(tempDir());
    for (const plain of ['s3cret', '', 'ünïcødé ✓ and a long one '.repeat(50)]) {
      const a = s.encrypt(plain);
      const b = s.encrypt(plain);
      assert.ok(s.isEncrypted(a));
      assert.notEqual(a, b, 'same ciphertext twice: IV reused');
      assert.ok(!a.includes(plain) || plain === '', 'plain text visible');
      assert.equal(s.decrypt(a), plain);
      assert.equal(s.decrypt(b), plain);
    }
  });

  it('does not encrypt twice', () => {
    const s = new Secrets(tempDir());
    const once = s.encrypt('pw');
    assert.equal(s.encrypt(once), once);
    assert.equal(s.decrypt(s.encrypt(once)), 'pw');
  });

  it('detects tampering', () => {
    const s = new Secrets(tempDir());
    const enc = s.encrypt('do not touch');
    const prefix = enc.slice(0, enc.indexOf(':', 4) + 1);
    const raw = Buffer.from(enc.slice(prefix.length), 'base64');
    for (const i of [0, 12, 20, raw.length - 1]) {
      const t = Buffer.from(raw);
      t[i] ^= 0x01;
      assert.throws(() => s.decrypt(prefix + t.toString('base64')), Error, `byte ${i} flipped went unnoticed`);
    }
    assert.throws(() => s.decrypt(prefix + raw.subarray(0, raw.length - 1).toString('base64')));
    // A truncated tag (GCM accepts 4..16 bytes unless told otherwise) is refused, not trusted.
    const iv = raw.subarray(0, 12);
    assert.throws(() => s.decrypt(prefix + Buffer.concat([iv, raw.subarray(12, 16)]).toString('base64')), /truncated/);
  });

  it('passes plain values (stored before encryption) through', () => {
    const s = new Secrets(tempDir());
    assert.equal(s.isEncrypted('legacy-password'), false);
    assert.equal(s.decrypt('legacy-password'), 'legacy-password');
    assert.equal(s.decrypt(''), '');
  });

  it('creates <dataDir>/secret.key once, mode 0600, and reuses it', () => {
    const dir = path.join(tempDir(), 'nested', 'data');
    const a = new Secrets(dir);
    const file = path.join(dir, 'secret.key');
    assert.ok(existsSync(file));
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const key = readFileSync(file, 'utf8');
    assert.equal(Buffer.from(key.trim(), 'base64').length, 32);
    const enc = a.encrypt('kept across restarts');
    const b = new Secrets(dir);
    assert.equal(readFileSync(file, 'utf8'), key, 'key file rewritten');
    assert.equal(b.decrypt(enc), 'kept across restarts');
  });

  it('takes the key from the environment instead, and then writes no file', () => {
    const dir = tempDir();
    const a = new Secrets(dir, 'a-long-cluster-wide-secret-key');
    assert.equal(existsSync(path.join(dir, 'secret.key')), false);
    const enc = a.encrypt('shared');
    // Another node with the same key reads it; a node with another key (or the file key) does not.
    assert.equal(new Secrets(tempDir(), 'a-long-cluster-wide-secret-key').decrypt(enc), 'shared');
    assert.throws(() => new Secrets(tempDir(), 'another-long-secret-key-value').decrypt(enc));
    assert.throws(() => new Secrets(dir).decrypt(enc));
  });

  it('refuses a key file that does not hold a 32-byte key', () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'secret.key'), 'too-short\n', { mode: 0o600 });
    assert.throws(() => new Secrets(dir), /32-byte/);
  });
});
