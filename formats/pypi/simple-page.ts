/**
 * The simple repository API's documents (PEP 503 HTML, PEP 691 JSON; PEP 592 yanked, PEP 658/714
 * core metadata, PEP 700 size/upload-time/versions): one model, rendered either way and parsed
 * from either (a proxy's upstream answers one or the other). Pure.
 */
import { isSafeFilename, parseDistFilename } from './names.js';
import { compareVersions } from './pep440.js';

export const JSON_TYPE = 'application/vnd.pypi.simple.v1+json';
export const HTML_TYPE = 'application/vnd.pypi.simple.v1+html';

export interface ProjectFile {
  filename: string;
  /** Absolute, or relative to the page; without the hash fragment. */
  url: string;
  hashes: Record<string, string>;
  requiresPython?: string | null;
  /** PEP 658: hashes of the `.metadata` file, or true when it exists without known hashes. */
  coreMetadata?: Record<string, string> | true | null;
  /** PEP 592: false, true, or the reason. */
  yanked?: boolean | string;
  size?: number | null;
  /** ISO 8601 UTC (`yyyy-mm-ddThh:mm:ss.ffffffZ`). */
  uploadTime?: string | null;
}

export interface ProjectPage {
  name: string;
  files: ProjectFile[];
  versions: string[];
}

export class PageError extends Error {}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };
function unescapeHtml(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (m, e: string) => {
    if (e[0] === '#') {
      const n = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return Number.isFinite(n) && n > 0 && n <= 0x10ffff ? String.fromCodePoint(n) : m;
    }
    return ENTITIES[e.toLowerCase()] ?? m;
  });
}

/** Hash names and hex values only: a page is never a way to smuggle keys into objects. */
function cleanHashes(h: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!h || typeof h !== 'object' || Array.isArray(h)) return out;
  for (const [k, v] of Object.entries(h)) if (/^[a-z0-9_]{2,20}$/.test(k) && k !== '__proto__' && typeof v === 'string' && /^[0-9a-f]{8,256}$/i.test(v)) out[k] = v.toLowerCase();
  return out;
}

/** The versions of the files (from their names), highest last; `extra` adds versions a page listed. */
export function versionsOf(files: ProjectFile[], extra: string[] = []): string[] {
  const set = new Set(extra);
  for (const f of files) {
    const d = parseDistFilename(f.filename);
    if (d) set.add(d.version);
  }
  return [...set].sort(compareVersions);
}

function metadataAttr(m: ProjectFile['coreMetadata']): string | null {
  if (!m) return null;
  if (m === true) return 'true';
  const [k, v] = Object.entries(m)[0] ?? [];
  return k ? `${k}=${v}` : 'true';
}

export function renderProjectHtml(page: ProjectPage): string {
  const lines = [
    '<!DOCTYPE html>',
    '<html>',
    '<head>',
    '<meta name="pypi:repository-version" content="1.1">',
    `<title>Links for ${esc(page.name)}</title>`,
    '</head>',
    '<body>',
    `<h1>Links for ${esc(page.name)}</h1>`,
  ];
  for (const f of page.files) {
    const sha = f.hashes.sha256 ? `#sha256=${f.hashes.sha256}` : Object.entries(f.hashes)[0] ? `#${Object.entries(f.hashes)[0].join('=')}` : '';
    let attrs = `href="${esc(f.url + sha)}"`;
    if (f.requiresPython) attrs += ` data-requires-python="${esc(f.requiresPython)}"`;
    if (f.yanked) attrs += ` data-yanked="${f.yanked === true ? '' : esc(f.yanked)}"`;
    const meta = metadataAttr(f.coreMetadata);
    if (meta) attrs += ` data-core-metadata="${esc(meta)}" data-dist-info-metadata="${esc(meta)}"`;
    lines.push(`<a ${attrs}>${esc(f.filename)}</a><br>`);
  }
  lines.push('</body>', '</html>', '');
  return lines.join('\n');
}

export function renderProjectJson(page: ProjectPage): string {
  const sized = page.files.every((f) => typeof f.size === 'number');
  const files = page.files.map((f) => {
    const o: Record<string, unknown> = { filename: f.filename, url: f.url, hashes: f.hashes };
    if (f.requiresPython) o['requires-python'] = f.requiresPython;
    if (f.coreMetadata) {
      o['core-metadata'] = f.coreMetadata;
      o['dist-info-metadata'] = f.coreMetadata;
    }
    o.yanked = f.yanked ?? false;
    if (typeof f.size === 'number') o.size = f.size;
    if (f.uploadTime) o['upload-time'] = f.uploadTime;
    return o;
  });
  // PEP 700: api-version 1.1 promises `size` for every file; a page built from HTML may not know it.
  return JSON.stringify({ meta: { 'api-version': sized ? '1.1' : '1.0' }, name: page.name, versions: page.versions, files });
}

export function renderListHtml(names: string[]): string {
  const links = names.map((n) => `<a href="${esc(encodeURIComponent(n))}/">${esc(n)}</a><br>`);
  return [
    '<!DOCTYPE html>',
    '<html>',
    '<head>',
    '<meta name="pypi:repository-version" content="1.1">',
    '<title>Simple index</title>',
    '</head>',
    '<body>',
    ...links,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

export function renderListJson(names: string[]): string {
  return JSON.stringify({ meta: { 'api-version': '1.1' }, projects: names.map((name) => ({ name })) });
}

function resolve(url: string, base: string): string {
  try {
    return new URL(url, base).href;
  } catch {
    throw new PageError(`invalid file URL '${url}'`);
  }
}

/** A PEP 691 project page; URLs resolved against `pageUrl`. */
export function parseProjectJson(text: string, pageUrl: string): ProjectPage {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new PageError('not valid JSON');
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new PageError('not a JSON object');
  const d = doc as Record<string, unknown>;
  const meta = d.meta as Record<string, unknown> | undefined;
  if (!meta || typeof meta['api-version'] !== 'string' || !/^1\./.test(meta['api-version'])) throw new PageError('no supported meta.api-version');
  if (typeof d.name !== 'string' || !Array.isArray(d.files)) throw new PageError('no name or files');
  const files: ProjectFile[] = [];
  for (const x of d.files as unknown[]) {
    if (!x || typeof x !== 'object') continue;
    const f = x as Record<string, unknown>;
    if (typeof f.filename !== 'string' || typeof f.url !== 'string' || !isSafeFilename(f.filename)) continue;
    const cm = f['core-metadata'] ?? f['dist-info-metadata'];
    files.push({
      filename: f.filename,
      url: resolve(f.url, pageUrl).replace(/#.*$/, ''),
      hashes: cleanHashes(f.hashes),
      requiresPython: typeof f['requires-python'] === 'string' ? f['requires-python'] : null,
      coreMetadata: cm === true ? true : cm && typeof cm === 'object' ? cleanHashes(cm) : null,
      yanked: typeof f.yanked === 'string' ? f.yanked : f.yanked === true,
      size: typeof f.size === 'number' && Number.isSafeInteger(f.size) && f.size >= 0 ? f.size : null,
      uploadTime: typeof f['upload-time'] === 'string' ? f['upload-time'] : null,
    });
  }
  const versions = Array.isArray(d.versions) ? (d.versions as unknown[]).filter((v): v is string => typeof v === 'string') : [];
  return { name: d.name, files, versions: versionsOf(files, versions) };
}

function attributes(s: string): Map<string, string> {
  const out = new Map<string, string>();
  const re = /([^\s=/>]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g;
  for (let m = re.exec(s); m; m = re.exec(s)) out.set(m[1].toLowerCase(), unescapeHtml(m[2] ?? m[3] ?? m[4] ?? ''));
  return out;
}

/** A PEP 503 project page; URLs resolved against `pageUrl` (or the page's `<base href>`). */
export function parseProjectHtml(text: string, pageUrl: string, name: string): ProjectPage {
  let base = pageUrl;
  const b = /<base\b([^>]*)>/i.exec(text);
  if (b) {
    const href = attributes(b[1]).get('href');
    if (href) base = resolve(href, pageUrl);
  }
  const files: ProjectFile[] = [];
  const re = /<a\b([^>]*)>([\s\S]*?)<\/a\s*>/gi;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const a = attributes(m[1]);
    const href = a.get('href');
    if (!href) continue;
    const filename = unescapeHtml(m[2].replace(/<[^>]*>/g, '')).trim();
    if (!isSafeFilename(filename)) continue;
    const url = resolve(href, base);
    const hashes: Record<string, string> = {};
    const frag = /#([a-z0-9_]+)=([0-9a-f]+)$/i.exec(url);
    if (frag) Object.assign(hashes, cleanHashes({ [frag[1]]: frag[2] }));
    const cm = a.get('data-core-metadata') ?? a.get('data-dist-info-metadata');
    let coreMetadata: ProjectFile['coreMetadata'] = null;
    if (cm !== undefined && cm !== 'false') {
      const h = /^([a-z0-9_]+)=([0-9a-f]+)$/i.exec(cm);
      coreMetadata = h ? cleanHashes({ [h[1]]: h[2] }) : true;
    }
    files.push({
      filename,
      url: url.replace(/#.*$/, ''),
      hashes,
      requiresPython: a.get('data-requires-python') || null,
      coreMetadata,
      yanked: a.has('data-yanked') ? a.get('data-yanked') || true : false,
      size: null,
      uploadTime: null,
    });
  }
  return { name, files, versions: versionsOf(files) };
}

/** Project names of a PEP 503 or PEP 691 project list. */
export function parseProjectList(text: string, json: boolean): string[] {
  if (json) {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      throw new PageError('not valid JSON');
    }
    const projects = (doc as { projects?: unknown })?.projects;
    if (!Array.isArray(projects)) throw new PageError('no projects');
    return projects.map((p) => (p as { name?: unknown })?.name).filter((n): n is string => typeof n === 'string');
  }
  const out: string[] = [];
  const re = /<a\b[^>]*>([\s\S]*?)<\/a\s*>/gi;
  for (let m = re.exec(text); m; m = re.exec(text)) out.push(unescapeHtml(m[1].replace(/<[^>]*>/g, '')).trim());
  return out.filter((n) => n !== '');
}

/**
 * Which representation a client gets for its Accept header (PEP 691): JSON when it accepts
 * `…v1+json` (or `latest+json`) at least as much as any HTML type, else HTML; null when it
 * accepts neither (406).
 */
export function negotiate(accept: string | undefined): 'json' | 'html' | null {
  if (!accept) return 'html';
  let json = 0;
  let html = 0;
  let any = 0;
  for (const part of accept.split(',')) {
    const [type, ...params] = part.trim().toLowerCase().split(';');
    const qp = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const q = qp ? Number(qp.slice(2)) : 1;
    if (!Number.isFinite(q)) continue;
    const t = type.trim();
    if (t === JSON_TYPE || t === 'application/vnd.pypi.simple.latest+json') json = Math.max(json, q);
    else if (t === HTML_TYPE || t === 'application/vnd.pypi.simple.latest+html' || t === 'text/html') html = Math.max(html, q);
    else if (t === '*/*' || t === 'text/*' || t === 'application/*') any = Math.max(any, q);
  }
  if (json > 0 && json >= html) return 'json';
  if (html > 0) return 'html';
  if (any > 0) return 'html';
  return null;
}
