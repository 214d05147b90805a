import { createHash } from 'node:crypto';
import type { IHasher } from 'hash-wasm';

/** Digest algorithms ingest can compute (the names are the `blobs` columns). */
export type DigestAlgorithm = 'sha256' | 'sha1' | 'md5' | 'sha512' | 'blake2b256';

export const DIGEST_ALGORITHMS: readonly DigestAlgorithm[] = ['sha256', 'sha1', 'md5', 'sha512', 'blake2b256'];

/** What a format that declares nothing gets: what every ingest computed before formats declared theirs. */
export const DEFAULT_DIGESTS: readonly DigestAlgorithm[] = ['sha256', 'sha1', 'md5'];

/** Hex length of each digest (a client's expected value of another length can never match). */
export const DIGEST_HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha1: 40, md5: 32, sha512: 128, blake2b256: 64 };

export function isDigestAlgorithm(a: string): a is DigestAlgorithm {
  return (DIGEST_ALGORITHMS as readonly string[]).includes(a);
}

/** A set in canonical order, sha256 always in it (blobs are addressed by it). */
export function digestSet(algorithms: readonly DigestAlgorithm[] | undefined): DigestAlgorithm[] {
  const want = new Set<DigestAlgorithm>(algorithms ?? DEFAULT_DIGESTS);
  want.add('sha256');
  return DIGEST_ALGORITHMS.filter((a) => want.has(a));
}

/** One running digest: node:crypto, or BLAKE2b-256 in WASM (node's blake2b512 has no output length). */
export interface RunningHash {
  update(chunk: Uint8Array): void;
  digest(): string;
}

/**
 * BLAKE2b-256 instances, reused: each `createBLAKE2b` instantiates the WASM module (async). The
 * first is made when a format first asks for the digest (hash-wasm and its compiled WASM cost an
 * idle server a few MB, and most never hash BLAKE2b); from then on one is made ahead so a hasher
 * can usually start synchronously; `blake2b256()` otherwise waits.
 */
const blakeFree: IHasher[] = [];
let blakeMaking: Promise<void> | null = null;

function makeBlake(): Promise<void> {
  blakeMaking ??= import('hash-wasm').then(async ({ createBLAKE2b }) => {
    const h = await createBLAKE2b(256);
    blakeFree.push(h);
    blakeMaking = null;
  });
  return blakeMaking;
}

function wrapBlake(h: IHasher): RunningHash {
  h.init();
  let done = false;
  return {
    update: (chunk) => void h.update(chunk),
    digest: () => {
      const hex = h.digest('hex');
      if (!done) blakeFree.push(h);
      done = true;
      return hex;
    },
  };
}

/** A running hash of `algorithm`, or a promise of one when a BLAKE2b instance has to be made first. */
export function runningHash(algorithm: DigestAlgorithm): RunningHash | Promise<RunningHash> {
  if (algorithm !== 'blake2b256') {
    const h = createHash(algorithm);
    return { update: (chunk) => void h.update(chunk), digest: () => h.digest('hex') };
  }
  const free = blakeFree.pop();
  if (free) {
    void makeBlake();
    return wrapBlake(free);
  }
  return (async () => {
    for (;;) {
      await makeBlake();
      const h = blakeFree.pop();
      if (h) return wrapBlake(h);
    }
  })();
}

/** Whether a BLAKE2b instance is ready (calibration times it only then). */
export function blakeReady(): IHasher | undefined {
  return blakeFree[blakeFree.length - 1];
}
