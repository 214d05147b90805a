/**
 * `Content-Disposition` with a file name any client can read (RFC 6266): an ASCII `filename=`
 * for old clients plus `filename*=UTF-8''…` (RFC 8187) when the name is not plain ASCII. Header
 * values must be Latin-1 in Node, so a name with characters above U+00FF would otherwise fail
 * the whole response.
 */
export function contentDisposition(kind: 'attachment' | 'inline', fileName: string): string {
  const fallback = asciiFallback(fileName);
  const header = `${kind}; filename="${fallback}"`;
  return fallback === fileName ? header : `${header}; filename*=UTF-8''${encodeExtValue(fileName)}`;
}

/** Printable ASCII only; quotes and backslashes (quoted-string escapes old clients mishandle) and everything else become `_`. */
function asciiFallback(name: string): string {
  return name.replace(/[^\x20-\x7e]|["\\]/gu, '_');
}

/** RFC 8187 attr-char: ALPHA / DIGIT / "!#$&+-.^_`|~"; every other byte of the UTF-8 is %XX. */
function encodeExtValue(name: string): string {
  let out = '';
  // From the UTF-8 bytes (a lone surrogate becomes U+FFFD instead of throwing, as encodeURIComponent would).
  for (const b of Buffer.from(name, 'utf8')) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9!#$&+\-.^_`|~]/.test(c) ? c : '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}
