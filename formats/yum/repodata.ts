/**
 * Repodata as createrepo_c writes it (protocols.md §5.1): primary, filelists and other as
 * `<sha256>-<type>.xml.gz`, and repomd.xml naming them. Pure: stored package metadata in,
 * bytes out; nothing reads an RPM here.
 */
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { gzip as gzipCb } from 'node:zlib';
import { DEPENDENCY_KINDS, type Dependency, type RpmPackage } from './rpm-package.js';

const gzip = promisify(gzipCb);

/** One package as repodata lists it: its metadata, where it is, and its bytes' digest and size. */
export interface RepoPackage {
  pkg: RpmPackage;
  /** Relative to the repodata's base directory. */
  href: string;
  /** The package's digest (its pkgid), of type `checksumType` (default sha256; a merged member's may differ). */
  sha256: string;
  checksumType?: string;
  size: number;
  /** `time file`: seconds (createrepo_c uses the file's mtime; we use when it was stored). */
  fileTime: number;
}

export type RepodataType = 'primary' | 'filelists' | 'other';

export interface RepodataFile {
  type: RepodataType;
  /** `repodata/<sha256 of gz>-<type>.xml.gz` */
  href: string;
  gz: Buffer;
  sha256: string;
  openSha256: string;
  size: number;
  openSize: number;
}

// XML 1.0 allows neither these control characters nor lone surrogates; createrepo_c drops them too.
const INVALID_XML = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

export function xmlEscape(s: string): string {
  return s.replace(INVALID_XML, '').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const attr = (name: string, v: string | number | undefined) => (v === undefined ? '' : ` ${name}="${xmlEscape(String(v))}"`);
const el = (name: string, v: string) => (v === '' ? `<${name}/>` : `<${name}>${xmlEscape(v)}</${name}>`);

/** createrepo_c's `cr_is_primary`: the files primary.xml lists (dnf resolves file requires on these). */
export function isPrimaryFile(path: string): boolean {
  return path.startsWith('/etc/') || path === '/usr/lib/sendmail' || path.includes('bin/');
}

function depEntry(d: Dependency, withPre: boolean): string {
  return `<rpm:entry${attr('name', d.name)}${attr('flags', d.flags)}${attr('epoch', d.epoch)}${attr('ver', d.ver)}${attr('rel', d.rel)}${withPre && d.pre ? ' pre="1"' : ''}/>`;
}

function versionEl(p: RpmPackage): string {
  return `<version epoch="${p.epoch}"${attr('ver', p.version)}${attr('rel', p.release)}/>`;
}

function fileEl(f: { path: string; type?: string }): string {
  return `<file${attr('type', f.type)}>${xmlEscape(f.path)}</file>`;
}

/**
 * The requires primary lists, as createrepo_c chooses them: no `rpmlib(…)` (rpm satisfies
 * them), none the package satisfies itself (a name it provides, a primary file it holds), and
 * no repeat of the same requirement.
 */
export function listedRequires(p: RpmPackage): Dependency[] {
  const provided = new Set(p.deps.provides.map((d) => d.name));
  const files = new Set(p.files.map((f) => f.path));
  const seen = new Map<string, string>();
  const out: Dependency[] = [];
  for (const d of p.deps.requires) {
    if (d.name.startsWith('rpmlib(') || provided.has(d.name) || (files.has(d.name) && isPrimaryFile(d.name))) continue;
    const key = `${d.flags ?? ''}|${d.epoch ?? ''}:${d.ver ?? ''}-${d.rel ?? ''}|${d.pre ? 1 : 0}`;
    if (seen.get(d.name) === key) continue;
    seen.set(d.name, key);
    out.push(d);
  }
  return out;
}

export function primaryPackage(r: RepoPackage): string {
  const p = r.pkg;
  const deps = DEPENDENCY_KINDS.map((k) => {
    const list = k === 'requires' ? listedRequires(p) : (p.deps[k] ?? []);
    return list.length === 0 ? '' : `<rpm:${k}>${list.map((d) => depEntry(d, k === 'requires')).join('')}</rpm:${k}>`;
  }).join('');
  const files = p.files
    .filter((f) => f.type !== 'ghost' && isPrimaryFile(f.path))
    .map(fileEl)
    .join('');
  return (
    `<package type="rpm">${el('name', p.name)}${el('arch', p.arch)}${versionEl(p)}` +
    `<checksum${attr('type', r.checksumType ?? 'sha256')} pkgid="YES">${r.sha256}</checksum>${el('summary', p.summary)}${el('description', p.description)}` +
    `${el('packager', p.packager)}${el('url', p.url)}<time file="${r.fileTime}" build="${p.buildTime}"/>` +
    `<size package="${r.size}" installed="${p.installedSize}" archive="${p.archiveSize}"/><location${attr('href', r.href)}/>` +
    `<format>${el('rpm:license', p.license)}${el('rpm:vendor', p.vendor)}${el('rpm:group', p.group)}${el('rpm:buildhost', p.buildhost)}` +
    `${el('rpm:sourcerpm', p.sourcerpm)}<rpm:header-range start="${p.headerStart}" end="${p.headerEnd}"/>${deps}${files}</format></package>\n`
  );
}

function packageId(r: RepoPackage): string {
  return `pkgid="${r.sha256}"${attr('name', r.pkg.name)}${attr('arch', r.pkg.arch)}`;
}

export function filelistsPackage(r: RepoPackage): string {
  return `<package ${packageId(r)}>${versionEl(r.pkg)}${r.pkg.files.map(fileEl).join('')}</package>\n`;
}

/** createrepo_c keeps the 10 newest changelog entries. */
export const CHANGELOG_LIMIT = 10;

/**
 * The changelog other.xml lists, as createrepo_c does: the newest entries, oldest first, authors
 * without trailing spaces, and entries of one date made distinct (the older ones a second later).
 */
export function listedChangelog(p: RpmPackage): RpmPackage['changelog'] {
  const out: RpmPackage['changelog'] = [];
  let last = 0;
  for (const c of p.changelog.slice(0, CHANGELOG_LIMIT)) {
    out.push({ ...c, author: c.author.replace(/ +$/, '') });
    if (c.date === last) {
      let t = c.date;
      for (let k = out.length - 2; k >= 0 && out[k].date === t; k--, t++) out[k].date++;
    } else last = c.date;
  }
  return out.reverse();
}

export function otherPackage(r: RepoPackage): string {
  const entries = listedChangelog(r.pkg);
  const log = entries.map((c) => `<changelog${attr('author', c.author)}${attr('date', c.date)}>${xmlEscape(c.text)}</changelog>`).join('');
  return `<package ${packageId(r)}>${versionEl(r.pkg)}${log}</package>\n`;
}

const HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n';

function documents(pkgs: RepoPackage[]): Record<RepodataType, string> {
  const n = pkgs.length;
  return {
    primary: `${HEAD}<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="${n}">\n${pkgs.map(primaryPackage).join('')}</metadata>\n`,
    filelists: `${HEAD}<filelists xmlns="http://linux.duke.edu/metadata/filelists" packages="${n}">\n${pkgs.map(filelistsPackage).join('')}</filelists>\n`,
    other: `${HEAD}<otherdata xmlns="http://linux.duke.edu/metadata/other" packages="${n}">\n${pkgs.map(otherPackage).join('')}</otherdata>\n`,
  };
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** primary, filelists and other for `pkgs`, compressed and named by their digests. */
export async function repodataFiles(pkgs: RepoPackage[]): Promise<RepodataFile[]> {
  const docs = documents(pkgs);
  return Promise.all(
    (['primary', 'filelists', 'other'] as const).map(async (type) => {
      const open = Buffer.from(docs[type]);
      const gz = await gzip(open);
      const digest = sha256(gz);
      return { type, href: `repodata/${digest}-${type}.xml.gz`, gz, sha256: digest, openSha256: sha256(open), size: gz.length, openSize: open.length };
    }),
  );
}

/** repomd.xml naming `files`; `revision` and timestamps in seconds. */
export function repomdXml(files: RepodataFile[], revision: number): string {
  const data = files
    .map(
      (f) =>
        `  <data type="${f.type}">\n    <checksum type="sha256">${f.sha256}</checksum>\n    <open-checksum type="sha256">${f.openSha256}</open-checksum>\n` +
        `    <location href="${xmlEscape(f.href)}"/>\n    <timestamp>${revision}</timestamp>\n    <size>${f.size}</size>\n    <open-size>${f.openSize}</open-size>\n  </data>\n`,
    )
    .join('');
  return `${HEAD}<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">\n  <revision>${revision}</revision>\n${data}</repomd>\n`;
}
