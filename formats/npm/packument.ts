import semver from 'semver';
import { FORBIDDEN_KEYS, checkMapKeys, dropForbiddenKeys, own, parseForeignJson } from './safe-json.js';

/**
 * npm documents as pure functions (protocols.md §2.2): package names and paths, the packument
 * ("full" document) and its abbreviated "corgi" form, tarball URL rewriting, the publish merge
 * and the group merge. No database, no HTTP.
 */

export interface Dist {
  tarball?: string;
  shasum?: string;
  integrity?: string;
  [k: string]: unknown;
}

export interface VersionDoc {
  name?: string;
  version?: string;
  dist?: Dist;
  deprecated?: string;
  [k: string]: unknown;
}

export interface Packument {
  _id?: string;
  _rev?: string;
  name: string;
  'dist-tags': Record<string, string>;
  versions: Record<string, VersionDoc>;
  time?: Record<string, string>;
  [k: string]: unknown;
}

export class NpmInputError extends Error {}

/** Why `v` is not a version npm can publish (strict semver, no `v` prefix), or null. */
export function invalidVersion(v: string): string | null {
  if (v.length > 256 || !/^\d[0-9A-Za-z.+-]*$/.test(v) || semver.parse(v) === null) return `invalid version: "${v}" is not a semantic version (like 1.0.0)`;
  return null;
}

/** Why `tag` cannot name a dist-tag (empty, not URL-safe, a version or range, a prototype member), or null. */
export function invalidTag(tag: string): string | null {
  if (!tag || /^v?\d/.test(tag) || encodeURIComponent(tag) !== tag || FORBIDDEN_KEYS.has(tag)) return `invalid dist-tag name: ${tag}`;
  return null;
}

/** npm's rules for new package names (validate-npm-package-name), lenient on case for reads. */
const NAME_RE = /^(?:@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9~-][a-z0-9._~-]*$/i;

/** Why a package name is unusable, or null when it is fine. `strict`: the rules for publishing. */
export function invalidName(name: string, strict = false): string | null {
  if (!name) return 'name is empty';
  if (name.length > 214) return 'name is longer than 214 characters';
  if (!NAME_RE.test(name)) return 'name may only hold URL-safe characters and must not start with "." or "_"';
  if (strict && name !== name.toLowerCase()) return 'name must be lowercase';
  if (/^(node_modules|favicon\.ico)$/.test(name)) return `"${name}" is a reserved name`;
  return null;
}

/** `@scope/name` → { scope: 'scope', bare: 'name' }; `name` → { scope: null, bare: 'name' }. */
export function splitName(name: string): { scope: string | null; bare: string } {
  if (name.startsWith('@')) {
    const i = name.indexOf('/');
    return { scope: name.slice(1, i), bare: name.slice(i + 1) };
  }
  return { scope: null, bare: name };
}

/** The package name at the start of a decoded repository path and what follows it (segments). */
export function parsePackagePath(path: string): { name: string; rest: string[] } | null {
  const parts = path.split('/');
  if (parts[0] === '' || parts[0] === '-') return null;
  const n = parts[0].startsWith('@') ? 2 : 1;
  if (parts.length < n || parts.slice(0, n).some((p) => p === '')) return null;
  return { name: parts.slice(0, n).join('/'), rest: parts.slice(n) };
}

/** `name-1.0.0.tgz` (the bare name for scoped packages, as npm names it). */
export function tarballFile(name: string, version: string): string {
  return `${splitName(name).bare}-${version}.tgz`;
}

/** Repository path of a tarball: `<name>/-/<file>`. */
export function tarballPath(name: string, file: string): string {
  return `${name}/-/${file}`;
}

/** The version a tarball file name holds for a package (`name-1.2.3.tgz` → `1.2.3`), or null. */
export function versionOfFile(name: string, file: string): string | null {
  const prefix = splitName(name).bare + '-';
  if (!file.startsWith(prefix) || !file.endsWith('.tgz')) return null;
  const v = file.slice(prefix.length, -4);
  return v || null;
}

/** The last segment of a tarball URL (percent-decoded), or the canonical file name. */
export function tarballBasename(url: string | undefined, name: string, version: string): string {
  if (url) {
    const clean = url.split(/[?#]/)[0];
    const last = clean.slice(clean.lastIndexOf('/') + 1);
    try {
      const d = decodeURIComponent(last);
      if (d && d.endsWith('.tgz') && !d.includes('/')) return d;
    } catch {
      /* fall through */
    }
  }
  return tarballFile(name, version);
}

/** The public tarball URL under a repository URL (`http://host/repository/npm-group`). */
export function tarballUrl(repoUrl: string, name: string, file: string): string {
  return `${repoUrl.replace(/\/$/, '')}/${name}/-/${encodeURIComponent(file)}`;
}

/**
 * Every `versions[*].dist.tarball` pointed at `repoUrl` (the repository the client addressed),
 * keeping the file name; integrity, shasum and signatures untouched. Returns a new document.
 */
export function rewriteTarballs(doc: Packument, repoUrl: string): Packument {
  const versions: Record<string, VersionDoc> = {};
  for (const [v, man] of Object.entries(doc.versions ?? {})) {
    if (!man || typeof man !== 'object' || FORBIDDEN_KEYS.has(v)) continue;
    const dist = { ...(man.dist ?? {}) };
    dist.tarball = tarballUrl(repoUrl, doc.name, tarballBasename(dist.tarball, doc.name, v));
    versions[v] = { ...man, dist };
  }
  return { ...doc, versions };
}

/** Fields of a version an installer needs (the corgi document, npm's registry "install-v1" form). */
const CORGI_VERSION_FIELDS = [
  'name',
  'version',
  'dependencies',
  'optionalDependencies',
  'devDependencies',
  'bundleDependencies',
  'bundledDependencies',
  'peerDependencies',
  'peerDependenciesMeta',
  'bin',
  'directories',
  'engines',
  'cpu',
  'os',
  'libc',
  'dist',
  'deprecated',
  '_hasShrinkwrap',
  'hasInstallScript',
  'funding',
  'license',
] as const;

/** The abbreviated document (`application/vnd.npm.install-v1+json`). */
export function abbreviate(doc: Packument): Record<string, unknown> {
  const versions: Record<string, Record<string, unknown>> = {};
  for (const [v, man] of Object.entries(doc.versions ?? {})) {
    if (!man || typeof man !== 'object' || FORBIDDEN_KEYS.has(v)) continue;
    const out: Record<string, unknown> = {};
    for (const f of CORGI_VERSION_FIELDS) if (man[f] !== undefined) out[f] = man[f];
    // npm decides on running install scripts from this flag when the corgi lacks `scripts`.
    const scripts = man.scripts as Record<string, unknown> | undefined;
    if (out.hasInstallScript === undefined && scripts && (scripts.install || scripts.preinstall || scripts.postinstall)) out.hasInstallScript = true;
    versions[v] = out;
  }
  return { name: doc.name, modified: doc.time?.modified ?? new Date(0).toISOString(), 'dist-tags': doc['dist-tags'] ?? {}, versions };
}

/** A new `_rev` after `prev` (`<n>-<hex>`, as CouchDB spells it). */
export function nextRev(prev: string | undefined, salt: string): string {
  const n = prev ? Number.parseInt(prev, 10) || 0 : 0;
  let h = 0x811c9dc5;
  for (const c of salt + String(n)) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return `${n + 1}-${h.toString(16).padStart(8, '0')}${Date.now().toString(16)}`;
}

/** One tarball of a publish body, still base64. */
export interface PublishAttachment {
  version: string;
  file: string;
  data: string;
  length: number | null;
  dist: Dist;
}

/**
 * Reads a publish body: the one new version (libnpmpublish sends exactly one), its tarball
 * attachment and the dist-tags to set. Throws NpmInputError (a 400) for anything malformed.
 */
export function parsePublish(
  body: unknown,
  name: string,
): { version: string; manifest: VersionDoc; attachment: PublishAttachment; tags: Record<string, string>; extra: Record<string, unknown> } {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new NpmInputError('publish body must be a JSON object');
  const b = body as Record<string, unknown>;
  checkMapKeys(b);
  if (b.name !== undefined && b.name !== name) throw new NpmInputError(`package name in the body (${String(b.name)}) does not match the URL (${name})`);
  const versions = b.versions as Record<string, VersionDoc> | undefined;
  if (!versions || typeof versions !== 'object') throw new NpmInputError('publish body has no versions');
  const keys = Object.keys(versions);
  if (keys.length !== 1) throw new NpmInputError(`publish body must hold exactly one version (it holds ${keys.length})`);
  const version = keys[0];
  const manifest = versions[version];
  if (!manifest || typeof manifest !== 'object') throw new NpmInputError(`version ${version} is not an object`);
  if (manifest.version !== undefined && manifest.version !== version)
    throw new NpmInputError(`version key ${version} does not match its manifest's version ${String(manifest.version)}`);
  if (manifest.name !== undefined && manifest.name !== name) throw new NpmInputError(`manifest name ${String(manifest.name)} does not match the package ${name}`);
  const badVersion = invalidVersion(version);
  if (badVersion) throw new NpmInputError(badVersion);
  const atts = b._attachments as Record<string, { data?: unknown; length?: unknown }> | undefined;
  if (!atts || typeof atts !== 'object') throw new NpmInputError('publish body has no _attachments (the tarball)');
  const tgz = Object.entries(atts).filter(([k]) => k.endsWith('.tgz'));
  if (tgz.length !== 1) throw new NpmInputError('publish body must hold exactly one .tgz attachment');
  const [key, att] = tgz[0];
  if (typeof att?.data !== 'string') throw new NpmInputError(`attachment ${key} has no data`);
  const dist = manifest.dist ?? {};
  const file = tarballFile(name, version);
  const tags: Record<string, string> = {};
  for (const [t, v] of Object.entries((b['dist-tags'] as Record<string, unknown>) ?? {})) {
    if (typeof v !== 'string') throw new NpmInputError(`dist-tag ${t} must name a version`);
    const badTag = invalidTag(t);
    if (badTag) throw new NpmInputError(badTag);
    tags[t] = v;
  }
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(b)) {
    if (['_id', '_rev', 'name', 'versions', 'dist-tags', '_attachments', 'time', 'access', 'users'].includes(k)) continue;
    extra[k] = v;
  }
  return {
    version,
    manifest,
    attachment: { version, file, data: att.data, length: typeof att.length === 'number' ? att.length : null, dist },
    tags,
    extra,
  };
}

/** The packument after publishing `version` (dist.tarball is rewritten when served). */
export function applyPublish(existing: Packument | null, name: string, p: ReturnType<typeof parsePublish>, at: Date): Packument {
  const now = at.toISOString();
  const doc: Packument = existing ? structuredClone(existing) : { _id: name, name, 'dist-tags': {}, versions: {}, time: { created: now } };
  const { readme, ...manifest } = p.manifest as VersionDoc & { readme?: unknown };
  doc.versions[p.version] = { ...manifest, name, version: p.version, _id: `${name}@${p.version}`, dist: { ...p.attachment.dist, tarball: p.attachment.file } };
  for (const [t, v] of Object.entries(p.tags)) {
    // A tag naming a version the document does not hold would break every install of the tag.
    if (!own(doc.versions, v)) throw new NpmInputError(`dist-tag ${t} points at ${v}, which is not a version of ${name} (publishing ${p.version})`);
    doc['dist-tags'][t] = v;
  }
  if (!own(doc['dist-tags'], 'latest')) doc['dist-tags'].latest = p.version;
  // Top-level fields (description, readme, maintainers…) follow the newest publish.
  for (const [k, v] of Object.entries(p.extra)) doc[k] = v;
  if (typeof readme === 'string' && doc.readme === undefined) doc.readme = readme;
  doc.time = { ...(doc.time ?? {}), [p.version]: now, modified: now };
  if (!doc.time.created) doc.time.created = now;
  doc._rev = nextRev(existing?._rev, name + p.version);
  return doc;
}

/**
 * An update of metadata (npm deprecate, or the packument minus versions for unpublish): versions
 * not in the body are removed; `deprecated` follows the body for the others; dist-tags follow the
 * body but never point at a version that does not exist. New versions are refused (publish them).
 */
export function applyUpdate(existing: Packument, body: unknown, at: Date): { doc: Packument; removed: string[] } {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new NpmInputError('body must be a JSON object');
  const b = body as Partial<Packument>;
  checkMapKeys(b);
  if (!b.versions || typeof b.versions !== 'object' || Array.isArray(b.versions)) throw new NpmInputError('body has no versions');
  for (const v of Object.keys(b.versions)) {
    if (!own(existing.versions, v)) throw new NpmInputError(`version ${v} does not exist; publish it with its tarball`);
  }
  const doc = structuredClone(existing);
  const removed = Object.keys(existing.versions).filter((v) => !Object.hasOwn(b.versions!, v));
  for (const v of removed) {
    delete doc.versions[v];
    if (doc.time) delete doc.time[v];
  }
  for (const [v, man] of Object.entries(b.versions)) {
    const dep = man?.deprecated;
    if (typeof dep === 'string' && dep !== '') doc.versions[v].deprecated = dep;
    else delete doc.versions[v].deprecated;
  }
  const tags = (b['dist-tags'] && typeof b['dist-tags'] === 'object' ? b['dist-tags'] : doc['dist-tags']) as Record<string, string>;
  doc['dist-tags'] = {};
  for (const [t, v] of Object.entries(tags)) if (typeof v === 'string' && own(doc.versions, v)) doc['dist-tags'][t] = v;
  if (!own(doc['dist-tags'], 'latest')) {
    const newest = latestOf(Object.keys(doc.versions), doc.time);
    if (newest) doc['dist-tags'].latest = newest;
  }
  const now = at.toISOString();
  doc.time = { ...(doc.time ?? {}), modified: now };
  doc._rev = nextRev(existing._rev, 'update' + removed.join(','));
  return { doc, removed };
}

/** The most recently published of `versions` (by time, else the last listed). */
function latestOf(versions: string[], time: Record<string, string> | undefined): string | null {
  if (versions.length === 0) return null;
  let best = versions[versions.length - 1];
  for (const v of versions) {
    const tv = own(time, v);
    const tb = own(time, best);
    if (tv && tb && tv > tb) best = v;
  }
  return best;
}

/** Sets or removes one dist-tag; refuses a tag naming no version, or a semver-range-like tag name. */
export function setDistTag(doc: Packument, tag: string, version: string | null, at: Date): Packument {
  const badTag = invalidTag(tag);
  if (badTag) throw new NpmInputError(badTag);
  const out = structuredClone(doc);
  if (version === null) {
    if (tag === 'latest') throw new NpmInputError('the latest tag cannot be removed');
    delete out['dist-tags'][tag];
  } else {
    if (!own(out.versions, version)) throw new NpmInputError(`version ${version} of ${doc.name} does not exist`);
    out['dist-tags'][tag] = version;
  }
  out.time = { ...(out.time ?? {}), modified: at.toISOString() };
  out._rev = nextRev(doc._rev, `tag:${tag}:${version}`);
  return out;
}

/**
 * A group's document from its members' (in member order): versions are the union, the first
 * member wins a version both have; each dist-tag comes from the first member defining it; `time`
 * is the union (first member wins), `modified` the newest; other top-level fields come from the
 * first member.
 */
export function mergePackuments(docs: Packument[]): Packument {
  if (docs.length === 0) throw new Error('nothing to merge');
  const first = docs[0];
  const out: Packument = { ...first, 'dist-tags': {}, versions: {}, time: {} };
  let modified = '';
  for (const d of docs) {
    for (const [v, man] of Object.entries(d.versions ?? {})) if (!FORBIDDEN_KEYS.has(v) && !Object.hasOwn(out.versions, v)) out.versions[v] = man;
    for (const [t, v] of Object.entries(d['dist-tags'] ?? {})) if (!FORBIDDEN_KEYS.has(t) && !Object.hasOwn(out['dist-tags'], t)) out['dist-tags'][t] = v;
    for (const [k, v] of Object.entries(d.time ?? {})) {
      if (k === 'modified') {
        if (v > modified) modified = v;
      } else if (!FORBIDDEN_KEYS.has(k) && !Object.hasOwn(out.time!, k)) out.time![k] = v;
    }
  }
  if (modified) out.time!.modified = modified;
  delete out._rev;
  return out;
}

/** Parses a stored or fetched packument; throws NpmInputError when it is not one. */
export function parsePackument(text: string): Packument {
  let doc: unknown;
  try {
    doc = parseForeignJson(text);
  } catch {
    throw new NpmInputError('package document is not valid JSON');
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new NpmInputError('package document is not an object');
  const d = doc as Packument;
  if (typeof d.name !== 'string') throw new NpmInputError('package document has no name');
  if (!d.versions || typeof d.versions !== 'object' || Array.isArray(d.versions)) d.versions = {};
  if (!d['dist-tags'] || typeof d['dist-tags'] !== 'object' || Array.isArray(d['dist-tags'])) d['dist-tags'] = {};
  if (d.time !== undefined && (!d.time || typeof d.time !== 'object' || Array.isArray(d.time))) delete d.time;
  dropForbiddenKeys(d);
  return d;
}
