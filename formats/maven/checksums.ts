/**
 * Checksum files (`.sha1 .md5 .sha256 .sha512`): answered from the digests of the bytes served
 * (a member's file, a group's merged document), and checked when a client uploads one.
 */
import type { Content } from '../../src/repository/types.js';
import type { Stowage } from '../../src/stowage.js';
import type { ChecksumAlgorithm } from './layout.js';

const HEX_LENGTH: Record<ChecksumAlgorithm, number> = { sha1: 40, md5: 32, sha256: 64, sha512: 128 };

/** The lowercase hex digest a checksum file holds: its first token (old files append a file name); null when it holds none. */
export function parseChecksumFile(body: string, algorithm: ChecksumAlgorithm): string | null {
  const token = body.trim().split(/\s+/)[0]?.toLowerCase() ?? '';
  return token.length === HEX_LENGTH[algorithm] && /^[0-9a-f]+$/.test(token) ? token : null;
}

/**
 * The digest of stored content (settled first when a proxy is still receiving it). Ingest computes
 * the four for maven2 repositories; bytes first stored by another format on the same blob store
 * may lack some, computed once then.
 */
export async function digestOf(app: Stowage, content: Content, algorithm: ChecksumAlgorithm): Promise<string> {
  const c = content.pending ? await content.pending.stored : content;
  const known = c.blob[algorithm];
  if (known) return known;
  return (await app.blobs.ensureDigests(c.blob, [algorithm]))[algorithm]!;
}
