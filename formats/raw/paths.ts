import mime from 'mime-types';

/** Content type from the file name; unknown extensions are octet-stream. */
export function rawContentType(path: string): string {
  return mime.lookup(path.split('/').pop() ?? '') || 'application/octet-stream';
}

/** Nexus's raw component: the directory is the group, the full path the name, no version. */
export function rawComponent(path: string) {
  const dir = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '';
  return { namespace: '/' + dir, name: path, version: '' };
}
