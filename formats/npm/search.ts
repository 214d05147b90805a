/**
 * What `npm search` reads of a package (npm 11's format-search-stream: name, description,
 * version, date, keywords, publisher and `maintainers`, which it maps without checking): kept as
 * component attributes when a version is published, turned into a search result's `package`.
 */
import type { VersionDoc } from './packument.js';

export interface SearchPerson {
  username: string;
  email?: string;
}

/** A person as package.json spells one: `{name, email}` or `"Name <email> (url)"`. */
function person(p: unknown): SearchPerson | null {
  if (typeof p === 'string') {
    const m = /^\s*([^<(]*?)\s*(?:<([^>]*)>)?\s*(?:\([^)]*\))?\s*$/.exec(p);
    return m && m[1] ? { username: m[1], ...(m[2] ? { email: m[2] } : {}) } : null;
  }
  if (p && typeof p === 'object') {
    const o = p as { name?: unknown; username?: unknown; email?: unknown };
    const username = typeof o.username === 'string' ? o.username : typeof o.name === 'string' ? o.name : null;
    if (!username) return null;
    return { username, ...(typeof o.email === 'string' ? { email: o.email } : {}) };
  }
  return null;
}

/**
 * What `npm search` shows of a version, kept with its component: description, keywords, who
 * published it and the maintainers (the manifest's, else the publisher).
 */
export function searchAttributes(manifest: VersionDoc, publisher: string | null): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (typeof manifest.description === 'string') out.description = manifest.description;
  const kw = manifest.keywords;
  const keywords = Array.isArray(kw) ? kw.filter((k): k is string => typeof k === 'string') : typeof kw === 'string' ? kw.split(/[,\s]+/).filter(Boolean) : [];
  if (keywords.length > 0) out.keywords = keywords.slice(0, 100);
  const listed = Array.isArray(manifest.maintainers) ? manifest.maintainers.map(person).filter((p): p is SearchPerson => !!p) : [];
  const maintainers = listed.length > 0 ? listed : publisher ? [{ username: publisher }] : [];
  if (maintainers.length > 0) out.maintainers = maintainers.slice(0, 100);
  if (publisher) out.publisher = { username: publisher };
  return out;
}

/** A search result's `package` (the fields npm 11's search output reads, all present). */
export function searchPackage(full: string, c: { namespace: string; version: string; created: number; attributes: Record<string, unknown> }): Record<string, unknown> {
  const a = c.attributes;
  const maintainers = Array.isArray(a.maintainers) ? (a.maintainers as SearchPerson[]) : [];
  return {
    name: full,
    scope: c.namespace || 'unscoped',
    version: c.version,
    description: typeof a.description === 'string' ? a.description : '',
    keywords: Array.isArray(a.keywords) ? a.keywords : [],
    date: new Date(c.created).toISOString(),
    links: {},
    publisher: a.publisher && typeof a.publisher === 'object' ? a.publisher : maintainers[0],
    maintainers,
  };
}
