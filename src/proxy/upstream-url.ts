/**
 * One path segment percent-encoded for a URL path: everything but unreserved characters and the
 * sub-delimiters servers agree on. `+` is encoded, since some servers read it as a space.
 */
export function encodePathSegment(segment: string): string {
  return encodeURIComponent(segment).replace(/%(?:40|3A|24|26|2C|3B|3D)/gi, (m) => decodeURIComponent(m));
}

/** `remoteUrl` (a folder, with or without its trailing slash; any query kept) joined with a repository path. */
export function joinRemote(remoteUrl: string, path: string): string {
  const u = new URL(remoteUrl);
  const base = u.pathname.endsWith('/') ? u.pathname : u.pathname + '/';
  u.pathname = base + path.split('/').map(encodePathSegment).join('/');
  return u.href;
}
