import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * A dependency loaded on first use rather than at start, for one that only some installations
 * need (an LDAP client, a zip or XML reader): each loaded at start costs every idle server its
 * source and compiled code (issue 10, idle RSS). Synchronous, so call sites stay as they were;
 * the package's CommonJS build is what loads (every caller gets that same one, so `instanceof`
 * checks against its classes hold). Keep the types with `import type`.
 */
export function lazyRequire<T>(id: string): () => T {
  let mod: T | undefined;
  return () => (mod ??= require(id) as T);
}
