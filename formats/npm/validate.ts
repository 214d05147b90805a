/**
 * Checks of a publish beyond the document's shape (packument.ts): what the tarball's bytes are.
 * Pure; hosted.ts calls it before anything is written.
 */
import { contentTypeMismatch } from '../../src/repository/content-type-guard.js';
import type { RepositoryConfig } from '../../src/repository/types.js';
import { tarballPath } from './packument.js';

/**
 * With the repository's `strictContentTypeValidation`, a tarball must be gzip: an HTML page or
 * any other file sent as the attachment is refused (the message names what it looks like).
 */
export function tarballRefusal(config: RepositoryConfig, name: string, version: string, file: string, head: Buffer): string | null {
  if (!config.storage.strictContentTypeValidation) return null;
  const why = contentTypeMismatch(tarballPath(name, file), head);
  return why ? `Tarball of ${name}@${version} is not a gzip'd tar archive: ${why}` : null;
}
