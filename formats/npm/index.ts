/**
 * npm registry API (protocols.md §2) on `/repository/<repo>/` for hosted, proxy and group
 * repositories, as the npm CLI (v10/v11) speaks it. Routing reads top to bottom in `routes`;
 * writes live in hosted.ts, accounts and tokens in auth.ts, proxy/group hooks in proxy.ts.
 */
import { AppError } from '../../src/errors.js';
import type { ContentRequest, FormatPlugin, FormatRoute, RouteRequest } from '../../src/repository/format.js';
import type { GroupRepository, Repository } from '../../src/repository/repository.js';
import { sendContent } from '../../src/http/send-content.js';
import { NPM_TOKEN_REALM, couchUser, createToken, listTokens, login, logout, revokeToken, userDocument, whoami } from './auth.js';
import { readPackument, repositoryUrl, sendJson, servePackument } from './documents.js';
import { renderNpmError } from './errors.js';
import { changeDistTag, deleteTarball, putPackage, readJsonBody, unpublishPackage } from './hosted.js';
import { invalidName, rewriteTarballs } from './packument.js';
import { maintainPackuments } from './maintenance.js';
import { compareVersions, isPrerelease } from './versions.js';
import { proxyExpected } from './proxy-expected.js';
import { own } from './safe-json.js';
import { searchPackage } from './search.js';
import { forwardAudit, groupMembers, isMetadata, mergeMetadata, npmSection, proxyAsset, upstreamHeaders, upstreamUrl, validateMetadata } from './proxy.js';

const FORMAT = 'npm';

/** A package name from a route's `name` group, validated (a 400 names what is wrong). */
function packageName(req: RouteRequest): string {
  const name = req.params.name;
  const bad = invalidName(name);
  if (bad) throw new AppError('BAD_REQUEST', `Invalid package name "${name}": ${bad}`);
  return name;
}

function done(req: ContentRequest, status: number): void {
  sendJson(req.ctx, status, { ok: true, success: true });
}

// ---- route handlers: parse the row's parameters, one call, respond ----------------------

const pong = async (req: RouteRequest) => sendJson(req.ctx, 200, {});
const packument = (req: RouteRequest) => getPackument(req, packageName(req));
const version = (req: RouteRequest) => getVersion(req, packageName(req), req.params.spec);
const tarball = (req: RouteRequest) => getTarball(req, packageName(req), req.params.file);
const publish = async (req: RouteRequest) => done(req, await putPackage(req, packageName(req), false));
// A PUT through `-rev` is an unpublish of versions: putPackage asks for delete or edit as it finds.
const publishRevision = async (req: RouteRequest) => done(req, await putPackage(req, packageName(req), true));

async function unpublish(req: RouteRequest): Promise<void> {
  await unpublishPackage(req, packageName(req));
  done(req, 200);
}

async function unpublishTarball(req: RouteRequest): Promise<void> {
  await deleteTarball(req, packageName(req), req.params.file);
  done(req, 200);
}

async function distTags(req: RouteRequest): Promise<void> {
  const doc = await packumentOf(req, packageName(req));
  sendJson(req.ctx, 200, doc['dist-tags']);
}

async function distTag(req: RouteRequest): Promise<void> {
  const name = packageName(req);
  const version = own((await packumentOf(req, name))['dist-tags'], req.params.tag);
  if (version === undefined) throw new AppError('NOT_FOUND', `No dist-tag ${req.params.tag} on ${name}`);
  sendJson(req.ctx, 200, version);
}

async function setDistTag(req: RouteRequest): Promise<void> {
  const name = packageName(req);
  const version = await readJsonBody(req, 4096);
  if (typeof version !== 'string') throw new AppError('BAD_REQUEST', 'The body must be a JSON string naming a version');
  sendJson(req.ctx, 200, await changeDistTag(req, name, req.params.tag, version));
}

async function removeDistTag(req: RouteRequest): Promise<void> {
  sendJson(req.ctx, 200, await changeDistTag(req, packageName(req), req.params.tag, null));
}

function couchUserOf(req: RouteRequest): string {
  const user = couchUser(req.params.user);
  if (!user) throw new AppError('NOT_FOUND', 'Not found');
  return user;
}

const noWebLogin = async () => {
  // Web login is not offered: npm falls back to name and password (the CouchDB flow).
  throw new AppError('NOT_FOUND', 'Web login is not supported; use the legacy login (name and password)');
};

/**
 * A package name in a path: `@scope/name` (`@scope%2fname` arrives decoded) or a bare name;
 * never `-`, which starts the registry's own endpoints. Validated by the handler (a 400).
 */
const NAME = String.raw`(?<name>@[^/]*/[^/]+|(?!-(?:/|$))[^/@][^/]*)`;
const pkg = (tail = '') => new RegExp(`^${NAME}${tail}$`);
const distTagPath = new RegExp(String.raw`^-/package/${NAME}/dist-tags/(?<tag>[^/]+)$`);

/** The npm registry API, one row per endpoint (first match wins; GET answers HEAD too). */
const routes: FormatRoute[] = [
  { methods: ['GET'], path: /^$/, need: 'read', handler: pong },
  { methods: ['GET'], path: /^-\/ping$/, need: 'public', handler: pong },
  { methods: ['GET'], path: /^-\/whoami$/, need: 'public', handler: async (req) => whoami(req) },
  { methods: ['GET', 'POST'], path: /^-\/v1\/login$/, need: 'public', handler: noWebLogin },
  { methods: ['DELETE'], path: /^-\/user\/token\/(?<token>.*)$/, need: 'public', handler: (req) => logout(req, req.params.token) },
  { methods: ['GET'], path: /^-\/user\/(?!token\/)(?<user>.+)$/, need: 'public', handler: async (req) => userDocument(req, couchUserOf(req)) },
  { methods: ['PUT'], path: /^-\/user\/(?!token\/)(?<user>.+)$/, need: 'public', handler: (req) => login(req, couchUserOf(req)) },
  { methods: ['GET'], path: /^-\/npm\/v1\/tokens$/, need: 'public', handler: listTokens },
  { methods: ['POST'], path: /^-\/npm\/v1\/tokens$/, need: 'public', handler: createToken },
  { methods: ['DELETE'], path: /^-\/npm\/v1\/tokens\/token\/(?<key>.*)$/, need: 'public', handler: (req) => revokeToken(req, req.params.key) },
  { methods: ['POST'], path: /^-\/npm\/v1\/security\/(?<endpoint>advisories\/bulk|audits\/quick)$/, need: 'read', handler: (req) => forwardAudit(req, req.params.endpoint) },
  { methods: ['GET'], path: /^-\/v1\/search$/, need: 'browse', handler: search },
  { methods: ['GET'], path: new RegExp(String.raw`^-/package/${NAME}/dist-tags$`), need: 'read', handler: distTags },
  { methods: ['GET'], path: distTagPath, need: 'read', handler: distTag },
  { methods: ['PUT', 'POST'], path: distTagPath, need: 'add', handler: setDistTag },
  { methods: ['DELETE'], path: distTagPath, need: 'delete', handler: removeDistTag },
  { methods: ['GET'], path: pkg(), need: 'read', handler: packument },
  { methods: ['PUT'], path: pkg(), need: 'add', handler: publish },
  { methods: ['PUT'], path: pkg('/-rev/(?<rev>[^/]*)'), need: 'add', handler: publishRevision },
  { methods: ['DELETE'], path: pkg('/-rev/(?<rev>[^/]*)'), need: 'delete', handler: unpublish },
  { methods: ['GET'], path: pkg('/-/(?<file>[^/]+)'), need: 'read', handler: tarball },
  { methods: ['DELETE'], path: pkg('/-/(?<file>[^/]+)(?:/-rev/[^/]*)?'), need: 'delete', handler: unpublishTarball },
  { methods: ['GET'], path: pkg('/(?<spec>[^/]*)'), need: 'read', handler: version },
];

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
  userTokenRealms: [NPM_TOKEN_REALM],
  renderError: renderNpmError,
  routes,
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
