/** Where a PyPI repository keeps things (repository paths), and the URLs pages link to. */

/** A project's page: a PEP 691 document (hosted: derived; proxy: upstream's; group: merged). */
export const pagePath = (project: string) => `simple/${project}/`;
/** The project list. */
export const LIST_PATH = 'simple/';
export const filePath = (project: string, filename: string) => `packages/${project}/${filename}`;
/** PEP 658: the file's core metadata, next to it. */
export const metadataPath = (project: string, filename: string) => `${filePath(project, filename)}.metadata`;

/** A file's URL on a project page served at `<repo>/simple/<project>/`. */
export const fileUrl = (project: string, filename: string) => `../../packages/${encodeURIComponent(project)}/${encodeURIComponent(filename)}`;

/** The project a page path names, or null. */
export function projectOfPage(path: string): string | null {
  const m = /^simple\/([^/]+)\/$/.exec(path);
  return m ? m[1] : null;
}

/** The project and file name a `packages/` path names, or null. */
export function fileOfPath(path: string): { project: string; filename: string; metadata: boolean } | null {
  const m = /^packages\/([^/]+)\/([^/]+)$/.exec(path);
  if (!m) return null;
  const metadata = m[2].endsWith('.metadata');
  return { project: m[1], filename: metadata ? m[2].slice(0, -'.metadata'.length) : m[2], metadata };
}

/** What a hosted file asset records (its `pypi` attribute). */
export interface FileAttributes {
  /** The project's name as uploaded (not normalised). */
  project: string;
  version: string;
  filename: string;
  filetype: string;
  requiresPython?: string | null;
  blake2b256?: string | null;
  /** ISO 8601, microseconds, `Z`. */
  uploadTime: string;
  /** sha256 of the `.metadata` file, when one was extracted (wheels). */
  metadataSha256?: string | null;
  yanked?: boolean | string;
  summary?: string | null;
  requiresDist?: string[];
}

export function uploadTime(at: Date): string {
  return at.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
