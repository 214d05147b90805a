/**
 * Core metadata (`METADATA` in a wheel, `PKG-INFO` in an sdist): RFC 822-style headers, then
 * the description as the body. Pure.
 */

export interface CoreMetadata {
  metadataVersion: string | null;
  name: string | null;
  version: string | null;
  summary: string | null;
  requiresPython: string | null;
  requiresDist: string[];
  providesExtra: string[];
  /** Every header, in order, by its lower-cased name. */
  headers: Map<string, string[]>;
}

/** Reads the header block (folded lines joined); the body after the first blank line is ignored. */
export function parseCoreMetadata(text: string): CoreMetadata {
  const headers = new Map<string, string[]>();
  let last: { key: string; index: number } | null = null;
  for (const line of text.replace(/^\uFEFF/, '').split(/\r?\n/)) {
    if (line === '') break;
    if (/^[ \t]/.test(line)) {
      // A folded continuation of the previous header (descriptions once were written so).
      if (last) {
        const values = headers.get(last.key)!;
        values[last.index] += '\n' + line.replace(/^\s{1,8}\|?/, '');
      }
      continue;
    }
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const key = line.slice(0, i).trim().toLowerCase();
    const value = line.slice(i + 1).trim();
    const values = headers.get(key) ?? [];
    values.push(value);
    headers.set(key, values);
    last = { key, index: values.length - 1 };
  }
  const one = (k: string) => headers.get(k)?.[0] ?? null;
  return {
    metadataVersion: one('metadata-version'),
    name: one('name'),
    version: one('version'),
    summary: one('summary'),
    requiresPython: one('requires-python'),
    requiresDist: headers.get('requires-dist') ?? [],
    providesExtra: headers.get('provides-extra') ?? [],
    headers,
  };
}
