/**
 * A group's repodata, merged like mergerepo_c: every member's packages (first member wins on
 * name-epoch-version-release-arch), each package's location rewritten to `<member>/<href>` so
 * the group serves it from the member that listed it, primary/filelists/other regenerated (with
 * new checksums) whatever compression the members use. The merged files are stored in the
 * group itself; repomd.xml is the core's merged metadata document (cached until a member's
 * repomd.xml changes).
 */
import { spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { gunzip as gunzipCb } from 'node:zlib';
import type * as Fxp from 'fast-xml-parser';
import { lazyRequire } from '../../src/lazy-require.js';
import type { Content, GetOptions } from '../../src/repository/types.js';
import type { MergeInput } from '../../src/repository/format.js';
import { GroupRepository, type Repository } from '../../src/repository/repository.js';
import type { Stowage } from '../../src/stowage.js';
import { GZ_TYPE, isYumMetadata, XML_TYPE } from './paths.js';
import { putSignature, RETAIN_MS } from './repodata-service.js';
import { signingKeyOf } from './signing.js';
import { repodataFiles, repomdXml, type RepoPackage } from './repodata.js';
import { DEPENDENCY_KINDS, nevra, type Dependency, type DependencyKind, type RpmPackage } from './rpm-package.js';

const gunzip = promisify(gunzipCb);
const ARRAYS = new Set(['package', 'rpm:entry', 'file', 'changelog', 'data']);
/** Loaded with the first group merge: most servers never do one. */
const fxp = lazyRequire<typeof Fxp>('fast-xml-parser');
let parser: Fxp.XMLParser | undefined;
const xmlParser = () =>
  (parser ??= new (fxp().XMLParser)({
    ignoreAttributes: false,
    attributeNamePrefix: '',
    textNodeName: '#text',
    parseTagValue: false,
    parseAttributeValue: false,
    trimValues: false,
    isArray: (name) => ARRAYS.has(name),
  }));

async function readAll(content: Content): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await content.open()) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A compressor of the system (xz, zstd, bzip2) run on `input`: Node has no xz or zstd of its own. */
function viaTool(tool: string, input: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const p = spawn(tool, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    p.stdout.on('data', (c: Buffer) => out.push(c));
    p.stderr.on('data', (c: Buffer) => (err += c));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`${tool}: ${err.trim() || `exit ${code}`}`))));
    p.stdin.on('error', () => undefined);
    p.stdin.end(input);
  });
}

/** Decompresses a repodata file by its name (createrepo_c's `.gz`, `.xz`, `.zst`, `.bz2`, or plain). */
export async function decompress(href: string, bytes: Buffer): Promise<Buffer> {
  if (href.endsWith('.gz')) return gunzip(bytes);
  if (href.endsWith('.xz')) return viaTool('xz', bytes);
  if (href.endsWith('.zst')) return viaTool('zstd', bytes);
  if (href.endsWith('.bz2')) return viaTool('bzip2', bytes);
  return bytes;
}

type Node = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const text = (v: unknown): string => (v === undefined || v === null ? '' : typeof v === 'object' ? String((v as Node)['#text'] ?? '') : String(v));
const num = (v: unknown): number => Number(v ?? 0) || 0;

function deps(format: Node, kind: DependencyKind): Dependency[] {
  const entries: Node[] = format[`rpm:${kind}`]?.[0]?.['rpm:entry'] ?? format[`rpm:${kind}`]?.['rpm:entry'] ?? [];
  return entries.map((e) => {
    const d: Dependency = { name: e.name };
    if (e.flags) d.flags = e.flags;
    if (e.epoch !== undefined) d.epoch = e.epoch;
    if (e.ver !== undefined) d.ver = e.ver;
    if (e.rel !== undefined) d.rel = e.rel;
    if (e.pre === '1') d.pre = true;
    return d;
  });
}

/** One member's packages as stored metadata (primary + filelists + other joined on pkgid). */
function memberPackages(primary: Node, filelists: Node | null, other: Node | null): RepoPackage[] {
  const files = new Map<string, Node>();
  for (const p of filelists?.filelists?.package ?? []) files.set(p.pkgid, p);
  const logs = new Map<string, Node>();
  for (const p of other?.otherdata?.package ?? []) logs.set(p.pkgid, p);
  return (primary?.metadata?.package ?? []).map((p: Node) => {
    const id = text(p.checksum);
    const f = p.format ?? {};
    const fl = files.get(id);
    const depsOf = {} as Record<DependencyKind, Dependency[]>;
    for (const k of DEPENDENCY_KINDS) depsOf[k] = deps(f, k);
    const fileList = (fl?.file ?? p.format?.file ?? []).map((x: Node | string) => (typeof x === 'string' ? { path: x } : { path: text(x), ...(x.type ? { type: x.type } : {}) }));
    const pkg: RpmPackage = {
      name: text(p.name),
      arch: text(p.arch),
      epoch: num(p.version?.epoch),
      version: p.version?.ver ?? '',
      release: p.version?.rel ?? '',
      summary: text(p.summary),
      description: text(p.description),
      packager: text(p.packager),
      url: text(p.url),
      license: text(f['rpm:license']),
      vendor: text(f['rpm:vendor']),
      group: text(f['rpm:group']),
      buildhost: text(f['rpm:buildhost']),
      sourcerpm: text(f['rpm:sourcerpm']),
      buildTime: num(p.time?.build),
      installedSize: num(p.size?.installed),
      archiveSize: num(p.size?.archive),
      headerStart: num(f['rpm:header-range']?.start),
      headerEnd: num(f['rpm:header-range']?.end),
      deps: depsOf,
      files: fileList,
      // other.xml lists them oldest first; stored metadata keeps rpm's order (newest first).
      changelog: (logs.get(id)?.changelog ?? []).map((c: Node) => ({ author: c.author ?? '', date: num(c.date), text: text(c) })).reverse(),
    };
    return { pkg, href: p.location?.href ?? '', sha256: id, checksumType: p.checksum?.type ?? 'sha256', size: num(p.size?.package), fileTime: num(p.time?.file) };
  });
}

/** The files a member's repomd.xml names, by type. */
function repomdLocations(xml: Buffer): Map<string, string> {
  const doc = xmlParser().parse(xml.toString('utf8'));
  const out = new Map<string, string>();
  for (const d of doc?.repomd?.data ?? []) if (d?.location?.href) out.set(d.type, d.location.href);
  if (!out.has('primary')) throw new Error('repomd.xml names no primary metadata');
  return out;
}

async function memberFile(member: Repository, base: string, href: string, trail: string[]): Promise<Buffer | null> {
  // A nested group serves its own merged files (and packages through its members) as a client sees them.
  const c = member instanceof GroupRepository ? await groupContent(member, base + href, trail) : await member.get(base + href, { groupTrail: trail } as GetOptions);
  return c ? decompress(href, await readAll(c)) : null;
}

const MERGED_FILE = /-(primary|filelists|other)\.xml\.gz$/;

/**
 * The server each group belongs to, noted by the request handler: the core's merge hook is
 * given the group but not the server, whose content index lists the group's earlier files.
 */
export const groupApps = new WeakMap<Repository, Stowage>();

/** Merged repodata for the repomd.xml at `path` of `group` from its members' copies. */
export async function mergeRepomd(path: string, parts: MergeInput[], group: Repository): Promise<{ body: Buffer; contentType: string }> {
  const base = path.slice(0, -'repodata/repomd.xml'.length);
  const trail = [group.name];
  const seen = new Set<string>();
  const merged: RepoPackage[] = [];
  for (const { member, content } of parts) {
    const where = repomdLocations(await readAll(content));
    const primary = await memberFile(member, base, where.get('primary')!, trail);
    if (!primary) throw new Error(`member '${member.name}' lacks the primary metadata its repomd.xml names`);
    const filelists = where.has('filelists') ? await memberFile(member, base, where.get('filelists')!, trail) : null;
    const other = where.has('other') ? await memberFile(member, base, where.get('other')!, trail) : null;
    const pkgs = memberPackages(
      xmlParser().parse(primary.toString('utf8')),
      filelists && xmlParser().parse(filelists.toString('utf8')),
      other && xmlParser().parse(other.toString('utf8')),
    );
    for (const p of pkgs) {
      const key = nevra(p.pkg);
      if (seen.has(key)) continue;
      seen.add(key);
      merged.push({ ...p, href: `${member.name}/${p.href}` });
    }
  }
  const files = await repodataFiles(merged);
  const body = Buffer.from(repomdXml(files, Math.floor(Date.now() / 1000)));
  // The files first; the core stores repomd.xml itself once this returns.
  const keep = new Set(files.map((f) => base + f.href));
  await group.change({ source: 'group', key: `yum-repodata:${base}` }, async (c) => {
    for (const f of files) c.put(base + f.href, await c.stageBytes(f.gz), { contentType: GZ_TYPE, kind: 'metadata', ifAbsent: true });
    // Earlier merges' files go once no client mid-refresh can still want them.
    const app = groupApps.get(group);
    const old = app ? await app.content.findAssets(group.id, { pathPrefix: `${base}repodata/` }) : [];
    for (const a of old) if (!keep.has(a.path) && MERGED_FILE.test(a.path) && Date.now() - a.updated_at > RETAIN_MS) c.deleteAsset(a.path);
  });
  return { body, contentType: XML_TYPE };
}

/**
 * What a group serves at `path`: its own merged repodata files, a package at `<member>/<href>`
 * from that member (nested groups resolved the same way), else the first member that has it.
 */
export async function groupContent(group: GroupRepository, path: string, trail: string[] = []): Promise<Content | null> {
  if (/(^|\/)repodata\/[^/]+-(primary|filelists|other)\.xml\.gz$/.test(path)) {
    const own = await group.local(path);
    if (own) return own;
  }
  // repomd.xml and other mutable repodata: the core's merge (or first member's copy).
  if (isYumMetadata(path)) return group.get(path, { groupTrail: trail.length ? trail : undefined });
  // `<base><member>/<href>`: merged locations are relative to the repodata's directory, which is
  // `<base>` below the root when members keep repodata deeper (repodataDepth > 0).
  const segments = path.split('/');
  if (segments.length > 1) {
    const members = new Map((await group.members()).map((m) => [m.name, m]));
    for (let i = 0; i < segments.length - 1; i++) {
      const member = members.get(segments[i]);
      if (!member || trail.includes(member.name)) continue;
      const rest = [...segments.slice(0, i), ...segments.slice(i + 1)].join('/');
      const hit = member instanceof GroupRepository ? await groupContent(member, rest, [...trail, group.name]) : await member.get(rest, { groupTrail: [...trail, group.name] });
      if (hit) return hit;
    }
  }
  // The first member that has it; a nested group resolves its own `<member>/` locations.
  const [hit] = await group.walk(path, (m, t) => (m instanceof GroupRepository ? groupContent(m, path, t) : m.get(path, { groupTrail: t })), { first: true, trail });
  return hit?.value ?? null;
}

/**
 * The signature (`.asc`) or public key (`.key`) of a group's merged repomd.xml at `repomdPath`,
 * signed now when the merged document changed since; null when the group has no key.
 */
export async function groupSignature(app: Stowage, group: GroupRepository, repomdPath: string, want: 'asc' | 'key'): Promise<Content | null> {
  const key = await signingKeyOf(app, group);
  if (!key) return null;
  const repomd = await groupContent(group, repomdPath);
  if (!repomd) return null;
  const asc = await group.local(`${repomdPath}.asc`);
  if (!asc || asc.asset.attributes.signs !== repomd.blob.sha256) {
    const bytes = await readAll(repomd);
    await group.change({ source: 'group', key: `yum-repodata:${repomdPath}` }, async (c) => {
      await putSignature(c, repomdPath, bytes, key);
      const put = c.puts.find((p) => p.path === `${repomdPath}.asc`)!;
      put.attributes = { ...put.attributes, signs: repomd.blob.sha256 };
    });
  }
  return group.local(`${repomdPath}.${want}`);
}
