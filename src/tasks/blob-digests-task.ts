import { badRequest } from '../errors.js';
import { DIGEST_ALGORITHMS, isDigestAlgorithm, type DigestAlgorithm } from '../blob/digest-set.js';
import type { TaskType } from './task-service.js';

const BATCH = 200;

/**
 * Computes digests that ingest skipped (the formats that stored the bytes did not need them), so a
 * search by such a digest (`sha1=`, `md5=`, `sha512=`) finds every asset: each blob lacking one is
 * read once (`BlobService.ensureDigests`) and the row completed.
 */
export const blobDigestsTask: TaskType = {
  id: 'blobstore.digests',
  name: 'Blob store - compute missing digests',
  properties: [
    { id: 'blobStoreName', label: 'Blob store', type: 'blobstore', required: true },
    { id: 'algorithms', label: 'Algorithms', type: 'string', default: 'sha1,md5', help: `Comma-separated: ${DIGEST_ALGORITHMS.join(', ')}` },
  ],
  async run(app, attributes, ctx) {
    const store = await app.blobStores.require(String(attributes.blobStoreName));
    const algorithms = parseAlgorithms(attributes.algorithms);
    ctx?.log(`Computing missing ${algorithms.join(', ')} of the blobs of blob store '${store.name}'`);
    let after = 0;
    let done = 0;
    for (;;) {
      ctx?.signal.throwIfAborted();
      const batch = await app.blobs.lackingDigests(store.id, algorithms, after, BATCH);
      if (batch.length === 0) break;
      for (const b of batch) {
        ctx?.signal.throwIfAborted();
        await app.blobs.ensureDigests(b, algorithms);
        after = b.id;
        ctx?.progress(++done);
      }
    }
    return `Computed missing ${algorithms.join(', ')} of ${done} blobs of blob store '${store.name}'`;
  },
};

function parseAlgorithms(v: unknown): DigestAlgorithm[] {
  const names = String(v ?? 'sha1,md5')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  const unknown = names.find((n) => !isDigestAlgorithm(n));
  if (unknown || names.length === 0) throw badRequest(`algorithms: expected some of ${DIGEST_ALGORITHMS.join(', ')}, got '${unknown ?? ''}'`, { field: 'properties.algorithms' });
  return names as DigestAlgorithm[];
}
