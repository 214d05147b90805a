/**
 * npm registry API (protocols.md §2) on `/repository/<repo>/` for hosted, proxy and group
 * repositories, as the npm CLI (v10/v11) speaks it. Routing reads top to bottom in `handle`;
 * writes live in hosted.ts, accounts and tokens in auth.ts, proxy/group hooks in proxy.ts.
 */
import type Koa from 'koa';
import { AppError } from '../../src/errors.js';
import type { ContentRequest, FormatPlugin, RequestNeed } from '../../src/repository/format.js';
import type { GroupRepository, Repository } from '../../src/repository/repository.js';
import { sendContent } from '../../src/http/send-content.js';
import { NPM_TOKEN_REALM, couchUser, createToken, listTokens, login, logout, revokeToken, userDocument, whoami } from './auth.js';
import { readPackument, repositoryUrl, sendJson, servePackument } from './documents.js';
import { renderNpmError } from './errors.js';
import { changeDistTag, deleteTarball, putPackage, readJsonBody, unpublishPackage } from './hosted.js';
import { invalidName, parsePackagePath, rewriteTarballs } from './packument.js';
import { maintainPackuments } from './maintenance.js';
import { compareVersions, isPrerelease } from './versions.js';
import { proxyExpected } from './proxy-expected.js';
import { own } from './safe-json.js';
import { searchPackage } from './search.js';
import { forwardAudit, groupMembers, isMetadata, mergeMetadata, npmSection, proxyAsset, upstreamHeaders, upstreamUrl, validateMetadata } from './proxy.js';

const FORMAT = 'npm';

/** The package a path names (validated), or a 400. */
function packageOf(path: string): { name: string; rest: string[] } {
  const p = parsePackagePath(path);
  if (!p) throw new AppError('NOT_FOUND', 'Not found');
  const bad = invalidName(p.name);
  if (bad) throw new AppError('BAD_REQUEST', `Invalid package name "${p.name}": ${bad}`);
  return p;
}

/** Which action a request needs (the core authorizes it before `handle`). */
function classify(ctx: Koa.Context, path: string): RequestNeed {
  const m = ctx.method;
  if (path.startsWith('-/')) {
    const rest = path.slice(2);
    if (/^(ping|whoami|v1\/login|user\/|npm\/v1\/tokens)/.test(rest)) return 'public';
    if (rest.startsWith('package/')) return m === 'PUT' ? 'add' : m === 'DELETE' ? 'delete' : 'read';
    if (rest.startsWith('v1/search')) return 'browse';
    return 'read';
  }
  if (m === 'GET' || m === 'HEAD') return 'read';
  if (m === 'DELETE') return 'delete';
  // A PUT through `-rev` is an unpublish of versions; `handle` asks for delete or edit as it finds.
  return 'add';
}

async function handle(req: ContentRequest): Promise<void> {
  const { ctx, path } = req;
  const m = ctx.method;
  if (path === '' || path === '-/ping') return sendJson(ctx, 200, {});
  if (path.startsWith('-/')) return special(req, path.slice(2));
  const { name, rest } = packageOf(path);
  // <name>
  if (rest.length === 0) {
    if (m === 'GET' || m === 'HEAD') return getPackument(req, name);
    if (m === 'PUT') return done(req, await putPackage(req, name, false));
    return notAllowed(m, 'GET, HEAD, PUT');
  }
  // <name>/-rev/<rev>
  if (rest.length === 2 && rest[0] === '-rev') {
    if (m === 'PUT') return done(req, await putPackage(req, name, true));
    if (m === 'DELETE') {
      await unpublishPackage(req, name);
      return done(req, 200);
    }
    return notAllowed(m, 'PUT, DELETE');
  }
  // <name>/-/<file>[/-rev/<rev>]
  if (rest[0] === '-' && rest.length >= 2) {
    const file = rest[1];
    if (rest.length === 2 && (m === 'GET' || m === 'HEAD')) return getTarball(req, name, file);
    if (m === 'DELETE' && (rest.length === 2 || (rest.length === 4 && rest[2] === '-rev'))) {
      await deleteTarball(req, name, file);
      return done(req, 200);
    }
    throw new AppError('NOT_FOUND', 'Not found');
  }
  // <name>/<version-or-tag>
  if (rest.length === 1 && (m === 'GET' || m === 'HEAD')) return getVersion(req, name, rest[0]);
  throw new AppError('NOT_FOUND', 'Not found');
}

function done(req: ContentRequest, status: number): void {
  sendJson(req.ctx, status, { ok: true, success: true });
}

function notAllowed(method: string, allow: string): never {
  throw new AppError('METHOD_NOT_ALLOWED', `${method} is not supported here`, { headers: { Allow: allow } });
}

/** `-/…` endpoints. */
async function special(req: ContentRequest, rest: string): Promise<void> {
  const { ctx } = req;
  const m = ctx.method;
  if (rest === 'whoami') return whoami(req);
  // Web login is not offered: npm falls back to name and password (the CouchDB flow).
  if (rest === 'v1/login') throw new AppError('NOT_FOUND', 'Web login is not supported; use the legacy login (name and password)');
  if (rest.startsWith('user/token/')) {
    if (m !== 'DELETE') return notAllowed(m, 'DELETE');
    return logout(req, rest.slice('user/token/'.length));
  }
  if (rest.startsWith('user/')) {
    const user = couchUser(rest.slice(5));
    if (!user) throw new AppError('NOT_FOUND', 'Not found');
    if (m === 'PUT') return login(req, user);
    if (m === 'GET') return userDocument(req, user);
    return notAllowed(m, 'GET, PUT');
  }
  if (rest === 'npm/v1/tokens') {
    if (m === 'GET') return listTokens(req);
    if (m === 'POST') return createToken(req);
    return notAllowed(m, 'GET, POST');
  }
  if (rest.startsWith('npm/v1/tokens/token/') && m === 'DELETE') return revokeToken(req, rest.slice('npm/v1/tokens/token/'.length));
  if (rest === 'npm/v1/security/advisories/bulk' || rest === 'npm/v1/security/audits/quick') {
    if (m !== 'POST') return notAllowed(m, 'POST');
    return forwardAudit(req, rest.slice('npm/v1/security/'.length));
  }
  if (rest === 'v1/search') return search(req);
  if (rest.startsWith('package/')) {
    const { name, rest: tail } = packageOf(rest.slice('package/'.length));
    if (tail[0] !== 'dist-tags' || tail.length > 2) throw new AppError('NOT_FOUND', 'Not found');
    if (tail.length === 1) {
      if (m !== 'GET' && m !== 'HEAD') return notAllowed(m, 'GET');
      const doc = await packumentOf(req, name);
      return sendJson(ctx, 200, doc['dist-tags']);
    }
    const tag = tail[1];
    if (m === 'PUT' || m === 'POST') {
      const version = await readJsonBody(req, 4096);
      if (typeof version !== 'string') throw new AppError('BAD_REQUEST', 'The body must be a JSON string naming a version');
      return sendJson(ctx, 200, await changeDistTag(req, name, tag, version));
    }
    if (m === 'DELETE') return sendJson(ctx, 200, await changeDistTag(req, name, tag, null));
    if (m === 'GET') {
      const doc = await packumentOf(req, name);
      const version = own(doc['dist-tags'], tag);
      if (version === undefined) throw new AppError('NOT_FOUND', `No dist-tag ${tag} on ${name}`);
      return sendJson(ctx, 200, version);
    }
    return notAllowed(m, 'GET, PUT, DELETE');
  }
  throw new AppError('NOT_FOUND', 'Not found');
}

async function packumentContent(req: ContentRequest, name: string) {
  const c = await req.repo.get(name);
  if (!c) throw new AppError('NOT_FOUND', `Not found: ${name}`);
  return c;
}

async function packumentOf(req: ContentRequest, name: string) {
  return readPackument(await packumentContent(req, name));
}

async function getPackument(req: ContentRequest, name: string): Promise<void> {
  await servePackument(req, name, () => packumentContent(req, name));
}

async function getVersion(req: ContentRequest, name: string, spec: string): Promise<void> {
  const doc = rewriteTarballs(await packumentOf(req, name), repositoryUrl(req));
  const version = own(doc['dist-tags'], spec) ?? spec;
  const man = own(doc.versions, version);
  if (!man) throw new AppError('NOT_FOUND', `No version or tag ${spec} of ${name}`);
  sendJson(req.ctx, 200, man);
}

async function getTarball(req: ContentRequest, name: string, file: string): Promise<void> {
  if (!file.endsWith('.tgz')) throw new AppError('NOT_FOUND', `Not found: ${name}/-/${file}`);
  const c = await req.repo.get(`${name}/-/${file}`);
  if (!c) throw new AppError('NOT_FOUND', `Not found: ${name}/-/${file}`);
  await sendContent(req.ctx, c, { contentType: 'application/octet-stream' });
  req.repo.downloaded(c);
}

/** Repositories whose components a search covers (a group: its members, nested groups too). */
async function searchScope(repo: Repository): Promise<number[]> {
  if (repo.type !== 'group') return [repo.id];
  return (await (repo as GroupRepository).leaves()).map((m) => m.id);
}

/** `GET -/v1/search?text=&size=&from=`: packages of the repository's components whose name holds the text. */
async function search(req: ContentRequest): Promise<void> {
  const q = req.ctx.URL.searchParams;
  const text = (q.get('text') ?? '').trim().toLowerCase();
  const size = Math.min(250, Math.max(1, Number(q.get('size')) || 20));
  const from = Math.max(0, Number(q.get('from')) || 0);
  const ids = await searchScope(req.repo);
  const latest = new Map<string, { namespace: string; version: string; created: number; attributes: Record<string, unknown> }>();
  let token: string | null = null;
  let scanned = 0;
  do {
    const page = await req.app.content.listComponents({ repositoryIds: ids, keyword: text || undefined }, token, 500);
    for (const c of page.items) {
      const full = c.namespace ? `@${c.namespace}/${c.name}` : c.name;
      const prev = latest.get(full);
      if (!prev || c.created_at >= prev.created) {
        latest.set(full, { namespace: c.namespace, version: c.version, created: c.created_at, attributes: c.attributes ?? {} });
      }
    }
    token = page.continuationToken;
    scanned += page.items.length;
  } while (token && scanned < 20_000);
  const all = [...latest.entries()].sort(([a], [b]) => (a === text ? -1 : b === text ? 1 : a < b ? -1 : 1));
  const objects = all.slice(from, from + size).map(([full, c]) => ({
    package: searchPackage(full, c),
    score: { final: 1, detail: { quality: 1, popularity: 1, maintenance: 1 } },
    searchScore: 1,
  }));
  sendJson(req.ctx, 200, { objects, total: all.length, time: new Date().toUTCString() });
}

export const npm: FormatPlugin = {
  name: FORMAT,
  digests: ['sha256', 'sha1', 'sha512'],
  sections: [{ key: 'npm', schema: npmSection }],
  classify,
  userTokenRealms: [NPM_TOKEN_REALM],
  renderError: renderNpmError,
  handle,
  isMetadata,
  upstreamUrl: (remote, path) => upstreamUrl(remote, path),
  upstreamHeaders: () => upstreamHeaders(),
  proxyAsset: (path) => proxyAsset(path),
  proxyExpected,
  validateMetadata: (path, open) => validateMetadata(path, open),
  mergeMetadata: (path, parts) => mergeMetadata(path, parts),
  groupMembers,
  maintain: maintainPackuments,
  compareVersions,
  isPrerelease,
  componentOf: (path) => proxyAsset(path).component ?? null,
};
