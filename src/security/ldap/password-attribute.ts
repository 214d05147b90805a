import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Checks a password against a value of the user's password attribute (the
 * `userPasswordAttribute` mode, where Stowage compares instead of binding as the user). The
 * RFC 2307 schemes directories write (`{SSHA}`, `{SHA}`, the SHA-2 variants, `{SMD5}`, `{MD5}`)
 * and clear text; any other scheme (`{CRYPT}`, `{ARGON2}`, …) never matches. Constant time in the
 * digest comparison.
 */
const SCHEMES: Record<string, { algorithm: string; length: number; salted: boolean }> = {
  SHA: { algorithm: 'sha1', length: 20, salted: false },
  SSHA: { algorithm: 'sha1', length: 20, salted: true },
  SHA256: { algorithm: 'sha256', length: 32, salted: false },
  SSHA256: { algorithm: 'sha256', length: 32, salted: true },
  SHA384: { algorithm: 'sha384', length: 48, salted: false },
  SSHA384: { algorithm: 'sha384', length: 48, salted: true },
  SHA512: { algorithm: 'sha512', length: 64, salted: false },
  SSHA512: { algorithm: 'sha512', length: 64, salted: true },
  MD5: { algorithm: 'md5', length: 16, salted: false },
  SMD5: { algorithm: 'md5', length: 16, salted: true },
};

function equal(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export function passwordMatches(password: string, stored: Buffer | string): boolean {
  const value = Buffer.isBuffer(stored) ? stored.toString('utf8') : stored;
  if (!password || !value) return false;
  const m = /^\{([A-Za-z0-9-]+)\}(.*)$/s.exec(value);
  if (!m) {
    // Clear text: compare digests so the comparison does not leak the length.
    const h = (s: string) => createHash('sha256').update(s, 'utf8').digest();
    return equal(h(password), h(value));
  }
  const scheme = SCHEMES[m[1].toUpperCase()];
  if (!scheme) return false;
  const raw = Buffer.from(m[2], 'base64');
  if (raw.length < scheme.length || (!scheme.salted && raw.length !== scheme.length)) return false;
  const digest = raw.subarray(0, scheme.length);
  const salt = raw.subarray(scheme.length);
  const computed = createHash(scheme.algorithm).update(password, 'utf8').update(salt).digest();
  return equal(computed, digest);
}
