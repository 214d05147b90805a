/**
 * npm packages made in memory without the npm CLI: a valid tarball (gzip'd ustar with
 * `package/package.json` and files), the publish body libnpmpublish would send, and a PUT of it
 * to any registry (Stowage, verdaccio) — for publishing many versions quickly.
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';

/** One ustar header block. */
function header(name: string, size: number, mtime: number): Buffer {
  const h = Buffer.alloc(512, 0);
  const put = (s: string, off: number, len: number) => h.write(s, off, Math.min(len, Buffer.byteLength(s)), 'utf8');
  const oct = (n: number, len: number) => n.toString(8).padStart(len - 1, '0') + '\0';
  if (Buffer.byteLength(name) > 100) throw new Error(`tar name too long: ${name}`);
  put(name, 0, 100);
  put(oct(0o644, 8), 100, 8);
  put(oct(0, 8), 108, 8);
  put(oct(0, 8), 116, 8);
  put(oct(size, 12), 124, 12);
  put(oct(mtime, 12), 136, 12);
  h.fill(0x20, 148, 156); // checksum field counts as spaces
  put('0', 156, 1);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  let sum = 0;
  for (const b of h) sum += b;
  put(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8);
  return h;
}

/** A tar archive of the given files (in order), two zero blocks at the end. */
export function tar(files: Array<{ name: string; data: Buffer | string }>, mtime = 1_700_000_000): Buffer {
  const parts: Buffer[] = [];
  for (const f of files) {
    const data = Buffer.isBuffer(f.data) ? f.data : Buffer.from(f.data);
    parts.push(header(f.name, data.length, mtime), data);
    const pad = (512 - (data.length % 512)) % 512;
    if (pad) parts.push(Buffer.alloc(pad));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

export interface GenPackage {
  name: string;
  version: string;
  /** Extra package.json fields (dependencies, description…). */
  manifest?: Record<string, unknown>;
  /** Extra files under package/. */
  files?: Record<string, string>;
}

/** The package.json and the gzip'd tarball of a package. */
export function packageTarball(p: GenPackage): { manifest: Record<string, unknown>; tarball: Buffer } {
  const manifest = { name: p.name, version: p.version, description: `${p.name} test package`, main: 'index.js', license: 'MIT', ...(p.manifest ?? {}) };
  const files = { 'index.js': `module.exports = ${JSON.stringify(`${p.name}@${p.version}`)};\n`, ...(p.files ?? {}) };
  const entries = [{ name: 'package/package.json', data: JSON.stringify(manifest, null, 2) + '\n' }, ...Object.entries(files).map(([n, d]) => ({ name: `package/${n}`, data: d }))];
  return { manifest, tarball: gzipSync(tar(entries)) };
}

export function integrityOf(tarball: Buffer): { integrity: string; shasum: string } {
  return { integrity: 'sha512-' + createHash('sha512').update(tarball).digest('base64'), shasum: createHash('sha1').update(tarball).digest('hex') };
}

/** The body `npm publish` sends for one version (libnpmpublish's shape). */
export function publishBody(p: GenPackage, registry: string, opts: { tag?: string; tarball?: Buffer; integrity?: string; shasum?: string } = {}): Record<string, unknown> {
  const { manifest, tarball: built } = packageTarball(p);
  const tarball = opts.tarball ?? built;
  const sums = integrityOf(tarball);
  const bare = p.name.startsWith('@') ? p.name.slice(p.name.indexOf('/') + 1) : p.name;
  const file = `${bare}-${p.version}.tgz`;
  return {
    _id: p.name,
    name: p.name,
    description: manifest.description,
    'dist-tags': { [opts.tag ?? 'latest']: p.version },
    versions: {
      [p.version]: {
        ...manifest,
        _id: `${p.name}@${p.version}`,
        _nodeVersion: process.versions.node,
        _npmVersion: '11.0.0',
        dist: { integrity: opts.integrity ?? sums.integrity, shasum: opts.shasum ?? sums.shasum, tarball: `${registry.replace(/\/$/, '')}/${p.name}/-/${file}` },
      },
    },
    access: null,
    _attachments: {
      [p.name.startsWith('@') ? `${p.name.slice(0, p.name.indexOf('/'))}/${file}` : file]: {
        content_type: 'application/octet-stream',
        data: tarball.toString('base64'),
        length: tarball.length,
      },
    },
  };
}

/** `PUT <registry>/<escaped name>` of a generated version; resolves with the response. */
export async function publish(registry: string, p: GenPackage, auth?: string, opts: Parameters<typeof publishBody>[2] = {}): Promise<Response> {
  const escaped = p.name.replace('/', '%2f');
  const headers: Record<string, string> = { 'Content-Type': 'application/json', Accept: 'application/json' };
  if (auth) headers.Authorization = auth;
  return fetch(`${registry.replace(/\/$/, '')}/${escaped}`, { method: 'PUT', headers, body: JSON.stringify(publishBody(p, registry, opts)) });
}

/** Publishes versions `0.0.1 … 0.0.<count>`-style (`1.0.<i>`) of one package, a few at a time. */
export async function publishMany(registry: string, name: string, count: number, auth?: string, concurrency = 4): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= count) return;
      const r = await publish(registry, { name, version: `1.0.${i}` }, auth);
      if (r.status >= 300) throw new Error(`publish ${name}@1.0.${i}: ${r.status} ${await r.text()}`);
      await r.arrayBuffer().catch(() => undefined);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}
