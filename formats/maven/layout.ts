/**
 * The Maven 2 repository layout (protocols.md §4.1), parsed from a repository path: pure, no I/O.
 *
 *   <g/r/o/u/p>/<artifactId>/<version>/<artifactId>-<version>[-<classifier>].<extension>
 *   <g>/<a>/<baseVersion>-SNAPSHOT/<a>-<base>-<yyyyMMdd.HHmmss>-<buildNumber>[-<classifier>].<ext>
 *   <g>/<a>/maven-metadata.xml, <g>/<a>/<v>-SNAPSHOT/maven-metadata.xml, <g>/maven-metadata.xml
 *   any of those + .sha1 .md5 .sha256 .sha512 (checksums, answered from the file's digests)
 */

export const CHECKSUMS = ['sha1', 'md5', 'sha256', 'sha512'] as const;
export type ChecksumAlgorithm = (typeof CHECKSUMS)[number];

export const METADATA_FILE = 'maven-metadata.xml';

export interface Coordinates {
  groupId: string;
  artifactId: string;
  /** The directory's version: `1.0`, or `1.0-SNAPSHOT` for every build of that snapshot. */
  baseVersion: string;
  /** The file's version: `1.0`, `1.0-SNAPSHOT` (non-unique) or `1.0-20261201.120000-3`. */
  version: string;
  classifier: string | null;
  /** Everything after the version (and classifier) and its dot: `jar`, `tar.gz`, `jar.asc`. */
  extension: string;
  /** Timestamped snapshot builds: `20261201.120000` and 3. */
  timestamp: string | null;
  buildNumber: number | null;
}

export type MavenPath =
  | { kind: 'artifact'; path: string; coords: Coordinates }
  /** `dir` is the folder holding the document; `snapshotVersion` is set at snapshot-version level. */
  | { kind: 'metadata'; path: string; dir: string; snapshotVersion: string | null }
  | { kind: 'checksum'; path: string; algorithm: ChecksumAlgorithm; target: string; of: MavenPath };

const TIMESTAMPED = /^(\d{8}\.\d{6})-(\d+)/;
/** Characters Maven coordinates consist of (groupId segments, artifactIds, versions, classifiers). */
const COORD = /^[A-Za-z0-9_.\-+~]+$/;

/** The checksum algorithm a file name ends with, or null. */
export function checksumOf(path: string): ChecksumAlgorithm | null {
  const dot = path.lastIndexOf('.');
  const ext = path.slice(dot + 1) as ChecksumAlgorithm;
  return dot > 0 && CHECKSUMS.includes(ext) ? ext : null;
}

/**
 * Parsed paths kept (frozen: callers never change them): one GET parses its path several times
 * (routing, the version policy, the group's member routing, the proxy's metadata test), ~5% of
 * the CPU of a group GET of a jar or pom in a profile of `mvn dependency:resolve`.
 */
const parsed = new Map<string, MavenPath | null>();
const PARSED_MAX = 4096;

/** A path of the Maven 2 layout, or null when it is none (a STRICT repository refuses those). */
export function parseMavenPath(path: string): MavenPath | null {
  let p = parsed.get(path);
  if (p === undefined) {
    p = parse(path);
    if (p) deepFreeze(p);
    // A bound: past it the map starts over (the paths of one build fit many times).
    if (parsed.size >= PARSED_MAX) parsed.clear();
    parsed.set(path, p);
  }
  return p;
}

function deepFreeze(p: MavenPath): void {
  if (p.kind === 'artifact') Object.freeze(p.coords);
  if (p.kind === 'checksum') deepFreeze(p.of);
  Object.freeze(p);
}

function parse(path: string): MavenPath | null {
  const algorithm = checksumOf(path);
  if (algorithm) {
    const target = path.slice(0, -(algorithm.length + 1));
    const of = parseMavenPath(target);
    if (!of || of.kind === 'checksum') return null;
    return { kind: 'checksum', path, algorithm, target, of };
  }
  const segs = path.split('/');
  if (segs.some((s) => s === '' || s === '.' || s === '..')) return null;
  const file = segs[segs.length - 1];
  if (file === METADATA_FILE) {
    if (segs.length < 2) return null;
    const dirSegs = segs.slice(0, -1);
    if (!dirSegs.every((s) => COORD.test(s))) return null;
    const parent = dirSegs[dirSegs.length - 1];
    const snapshotVersion = dirSegs.length >= 3 && parent.endsWith('-SNAPSHOT') ? parent : null;
    return { kind: 'metadata', path, dir: dirSegs.join('/'), snapshotVersion };
  }
  if (segs.length < 4) return null;
  const version = segs[segs.length - 2];
  const artifactId = segs[segs.length - 3];
  const groupSegs = segs.slice(0, -3);
  if (![version, artifactId, ...groupSegs].every((s) => COORD.test(s))) return null;
  if (!file.startsWith(artifactId + '-')) return null;
  const rest = file.slice(artifactId.length + 1);
  const coords = fileCoordinates(rest, version);
  if (!coords) return null;
  return { kind: 'artifact', path, coords: { groupId: groupSegs.join('.'), artifactId, baseVersion: version, ...coords } };
}

/** The version, classifier and extension in a file name after `<artifactId>-`. */
function fileCoordinates(rest: string, baseVersion: string): Omit<Coordinates, 'groupId' | 'artifactId' | 'baseVersion'> | null {
  let version = baseVersion;
  let timestamp: string | null = null;
  let buildNumber: number | null = null;
  let tail: string;
  if (rest.startsWith(baseVersion) && /^[-.]/.test(rest.slice(baseVersion.length))) {
    tail = rest.slice(baseVersion.length);
  } else if (baseVersion.endsWith('-SNAPSHOT')) {
    const prefix = baseVersion.slice(0, -'SNAPSHOT'.length); // `1.0-`
    if (!rest.startsWith(prefix)) return null;
    const m = TIMESTAMPED.exec(rest.slice(prefix.length));
    if (!m) return null;
    timestamp = m[1];
    buildNumber = Number(m[2]);
    version = prefix + m[0];
    tail = rest.slice(version.length);
    if (!/^[-.]/.test(tail)) return null;
  } else return null;
  let classifier: string | null = null;
  if (tail.startsWith('-')) {
    const dot = tail.indexOf('.');
    if (dot < 0) return null;
    classifier = tail.slice(1, dot);
    tail = tail.slice(dot);
    if (classifier === '') return null;
  }
  const extension = tail.slice(1);
  if (extension === '' || extension.endsWith('.')) return null;
  return { version, classifier, extension, timestamp, buildNumber };
}

/** The file name of coordinates in their version directory. */
export function fileName(c: Pick<Coordinates, 'artifactId' | 'version' | 'classifier' | 'extension'>): string {
  return `${c.artifactId}-${c.version}${c.classifier ? '-' + c.classifier : ''}.${c.extension}`;
}

/** A non-unique snapshot file (`a-1.0-SNAPSHOT.jar`): replaced by every deploy, upstream and here. */
export function isPlainSnapshot(c: Pick<Coordinates, 'version' | 'baseVersion'>): boolean {
  return c.version === c.baseVersion && c.baseVersion.endsWith('-SNAPSHOT');
}

/** `g/r/o/u/p/artifactId` */
export function artifactDir(groupId: string, artifactId: string): string {
  return `${groupId.replace(/\./g, '/')}/${artifactId}`;
}

/** Content-Type Stowage serves a Maven file with (protocols.md §4.2). */
export function contentTypeOf(path: string): string {
  if (checksumOf(path)) return 'text/plain';
  const name = path.slice(path.lastIndexOf('/') + 1);
  if (name.endsWith('.pom') || name.endsWith('.xml')) return 'application/xml';
  if (name.endsWith('.jar') || name.endsWith('.war') || name.endsWith('.ear')) return 'application/java-archive';
  if (name.endsWith('.asc')) return 'text/plain';
  if (name.endsWith('.zip')) return 'application/zip';
  if (name.endsWith('.tar.gz') || name.endsWith('.tgz')) return 'application/x-gzip';
  if (name.endsWith('.module') || name.endsWith('.json')) return 'application/json';
  return 'application/octet-stream';
}
