/**
 * What a proxied npm tarball must be, from the cached packument's `dist.shasum`: a tarball cut
 * short (or replaced) upstream is refused instead of cached. Only the copy already stored is
 * read; a tarball fetched without its packument has nothing to check against.
 */
import type { Repository } from '../../src/repository/repository.js';
import type { ExpectedContent } from '../../src/repository/format.js';
import { readPackument } from './documents.js';
import { parsePackagePath, versionOfFile } from './packument.js';

export async function proxyExpected(path: string, repo: Repository): Promise<ExpectedContent | null> {
  const p = parsePackagePath(path);
  if (!p || p.rest.length !== 2 || p.rest[0] !== '-') return null;
  const version = versionOfFile(p.name, p.rest[1]);
  if (!version) return null;
  const cached = await repo.local(p.name);
  if (!cached) return null;
  const doc = await readPackument(cached);
  const v = Object.hasOwn(doc.versions ?? {}, version) ? doc.versions[version] : undefined;
  const shasum = (v as { dist?: { shasum?: unknown } } | undefined)?.dist?.shasum;
  return typeof shasum === 'string' && /^[0-9a-f]{40}$/i.test(shasum) ? { sha1: shasum } : null;
}
