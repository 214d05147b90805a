/**
 * npm documents are JSON objects used as maps keyed by whatever a client or an upstream registry
 * sent (versions, dist-tags, attachments, times, users). A key such as `__proto__` or
 * `constructor` must never reach an assignment or a lookup that walks the prototype chain: one
 * `doc.versions['__proto__'].deprecated = …` writes Object.prototype for the whole process.
 * Client JSON with such keys is refused (a 400); upstream and stored documents lose them.
 */
import { NpmInputError } from './packument.js';

/** Keys that name a prototype or its members, never a version, tag, file or user. */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** The maps of a packument keyed by client- or upstream-chosen names. */
export const MAP_FIELDS = ['versions', 'dist-tags', 'time', 'users', '_attachments'] as const;

/** `map[key]` when it is the map's own entry; never an inherited member. */
export function own<T>(map: Record<string, T> | null | undefined, key: string): T | undefined {
  return map && Object.hasOwn(map, key) ? map[key] : undefined;
}

/** Parses JSON a client sent; a `__proto__` key anywhere in it is a 400. */
export function parseClientJson(text: string): unknown {
  return JSON.parse(text, function (key, value: unknown) {
    if (key === '__proto__') throw new NpmInputError('"__proto__" is not allowed as a key');
    return value;
  });
}

/** Parses JSON an upstream registry or the blob store holds, dropping every `__proto__` key. */
export function parseForeignJson(text: string): unknown {
  return JSON.parse(text, (key, value: unknown) => (key === '__proto__' ? undefined : value));
}

/** Refuses a client document whose maps use a forbidden key (`versions.constructor`…). */
export function checkMapKeys(doc: Record<string, unknown>): void {
  for (const field of MAP_FIELDS) {
    const map = doc[field];
    if (!map || typeof map !== 'object') continue;
    for (const k of Object.keys(map)) {
      if (FORBIDDEN_KEYS.has(k)) throw new NpmInputError(`"${k}" is not allowed as a key of ${field}`);
    }
  }
}

/** Removes forbidden keys from a foreign document's maps (an upstream's packument is served without them). */
export function dropForbiddenKeys(doc: Record<string, unknown>): void {
  for (const field of MAP_FIELDS) {
    const map = doc[field];
    if (!map || typeof map !== 'object') continue;
    for (const k of FORBIDDEN_KEYS) if (Object.hasOwn(map, k)) delete (map as Record<string, unknown>)[k];
  }
}
