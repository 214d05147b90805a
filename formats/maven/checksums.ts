/**
 * Checksum files (`.sha1 .md5 .sha256 .sha512`): answered from the digests of the bytes served
 * (a member's file, a group's merged document), and checked when a client uploads one.
 */
import { createHash } from 'node:crypto';
import type { Content } from '../../src/repository/types.js';
import type { ChecksumAlgorithm } from './layout.js';

const HEX_LENGTH: Record<ChecksumAlgorithm, number> = { sha1: 40, md5: 32, sha256: 64, sha512: 128 };

/** The lowercase hex digest a checksum file holds: its first token (old files append a file name); null when it holds none. */
export function parseChecksumFile(body: string, algorithm: ChecksumAlgorithm): string | null {
  const token = body.trim().split(/\s+/)[0]?.toLowerCase() ?? '';
  return token.length === HEX_LENGTH[algorithm] && /^[0-9a-f]+$/.test(token) ? token : null;
}

/** The digest of stored content (settled first when a proxy is still receiving it). */
export async function digestOf(content: Content, algorithm: ChecksumAlgorithm): Promise<string> {
  const c = content.pending ? await content.pending.stored : content;
  if (algorithm !== 'sha512') return c.blob[algorithm];
  const stored = (c.blob as { sha512?: string | null }).sha512;
  if (stored) return stored;
  // TODO(digests): the blob row has no sha512 until ingest computes the declared digests; remove this.
  const hash = createHash('sha512');
  for await (const chunk of await c.open()) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
