import { z } from 'zod';
import type { FormatPlugin, FormatRoute, RootRoute, RouteRequest } from '../../src/repository/format.js';
import { DOCKER_TOKEN_REALM, authenticated, dockerListenerPort, forcesBasicAuth, tokenEndpoint, unauthorized } from './auth.js';
import { API_VERSION, API_VERSION_HEADER, ociError, renderOciError } from './errors.js';
import { compareVersions, componentOf, isPrerelease } from './components.js';
import { maintain } from './maintenance.js';
import { toWritableMember } from './group.js';
import { catalog, deleteManifest, getManifest, getReferrers, ping, putManifest, tagsList } from './registry-manifests.js';
import { cancelUpload, deleteBlob, getBlob, patchUpload, putUpload, startUpload, uploadStatus } from './registry-blobs.js';
import { archiveRoutes } from './archive.js';
import { DOCKER_DIGESTS } from './changes.js';
import { dockerProxySection, isMetadata, proxyAsset, proxyExpected, upstreamChallenge, upstreamHeaders, upstreamUrl } from './proxy.js';
import { dockerGcTask, dockerUploadPurgeTask, reclaimRepository } from './gc.js';

export interface DockerSection {
  v1Enabled: boolean;
  forceBasicAuth: boolean;
  httpPort?: number | null;
  httpsPort?: number | null;
  latestPolicy?: boolean;
}

// ---- plugin ----------------------------------------------------------------------------

/**
 * What every registry row does before its handler: the API version header, Nexus's forced Basic
 * auth (no anonymous pull, whatever the anonymous role may read), and for a push through a group,
 * the group's writable member as the request's repository.
 */
function registry(handler: (req: RouteRequest) => Promise<void>, opts: { push?: boolean } = {}): FormatRoute['handler'] {
  return async (req) => {
    req.ctx.set(API_VERSION_HEADER, API_VERSION);
    if (forcesBasicAuth(req.repo) && (!req.principal || req.principal.anonymous)) throw unauthorized();
    // The member's request keeps the params (and is the key group.ts remembers the group by).
    if (opts.push && req.repo.type === 'group') req = (await toWritableMember(req)) as RouteRequest;
    return handler(req);
  };
}

async function token(req: RouteRequest): Promise<void> {
  req.ctx.set(API_VERSION_HEADER, API_VERSION);
  return tokenEndpoint(req.ctx, req.app, req.repo);
}

const NAME = String.raw`v2/(?<name>.+)`;
const route = (pattern: string) => new RegExp(`^${pattern}$`);
const uploadRoute = route(String.raw`${NAME}/blobs/uploads/(?<uuid>[^/]+)`);
// `blobs/uploads` is the start of an upload, never a blob's digest.
const blobRoute = route(String.raw`${NAME}/blobs/(?<digest>(?!uploads$)[^/]+)`);
const manifestRoute = route(String.raw`${NAME}/manifests/(?<reference>[^/]+)`);

/**
 * The registry API (distribution spec v2 / OCI 1.1), one row per endpoint, matched on the path
 * inside the repository (`v2/…`, also on a dedicated port and through the root route).
 */
const routes: FormatRoute[] = [
  { methods: ['GET'], path: /(?:^|\/)v2\/token$/, need: 'public', handler: token },
  { methods: ['GET'], path: /^v2\/?$/, need: 'public', handler: registry(ping) },
  { methods: ['GET'], path: /^v2\/_catalog$/, need: 'browse', handler: registry(catalog) },
  { methods: ['GET'], path: route(String.raw`${NAME}/tags/list`), need: 'read', handler: registry((req) => tagsList(req, req.params.name)) },
  { methods: ['POST'], path: route(String.raw`${NAME}/blobs/uploads/?`), need: 'add', handler: registry((req) => startUpload(req, req.params.name), { push: true }) },
  // An upload session is the pusher's: asking for its state or cancelling it needs add too.
  { methods: ['GET'], path: uploadRoute, need: 'add', handler: registry((req) => uploadStatus(req, req.params.name, req.params.uuid), { push: true }) },
  { methods: ['PATCH'], path: uploadRoute, need: 'add', handler: registry((req) => patchUpload(req, req.params.name, req.params.uuid), { push: true }) },
  { methods: ['PUT'], path: uploadRoute, need: 'add', handler: registry((req) => putUpload(req, req.params.name, req.params.uuid), { push: true }) },
  { methods: ['DELETE'], path: uploadRoute, need: 'add', handler: registry((req) => cancelUpload(req, req.params.name, req.params.uuid), { push: true }) },
  { methods: ['GET'], path: blobRoute, need: 'read', handler: registry((req) => getBlob(req, req.params.name, req.params.digest)) },
  { methods: ['DELETE'], path: blobRoute, need: 'delete', handler: registry((req) => deleteBlob(req, req.params.name, req.params.digest)) },
  { methods: ['GET'], path: manifestRoute, need: 'read', handler: registry((req) => getManifest(req, req.params.name, req.params.reference)) },
  { methods: ['PUT'], path: manifestRoute, need: 'add', handler: registry((req) => putManifest(req, req.params.name, req.params.reference), { push: true }) },
  { methods: ['DELETE'], path: manifestRoute, need: 'delete', handler: registry((req) => deleteManifest(req, req.params.name, req.params.reference)) },
  {
    methods: ['GET'],
    path: route(String.raw`${NAME}/referrers/(?<digest>[^/]+)`),
    need: 'read',
    handler: registry((req) => getReferrers(req, req.params.name, req.params.digest)),
  },
];

/**
 * `/v2/<repo>/<image>/…` on the main listener: the first path segment names the repository, as
 * real clients cannot put a path prefix before `/v2/`.
 */
const pathRouted: RootRoute = {
  prefix: '/v2/',
  resolve(rawPath) {
    const rest = rawPath.replace(/^\/v2\/?/, '');
    const slash = rest.indexOf('/');
    if (rest === '' || rest === '_catalog' || slash <= 0) return null;
    let repository: string;
    try {
      repository = decodeURIComponent(rest.slice(0, slash));
    } catch {
      return null;
    }
    return { repository, rawPath: 'v2/' + rest.slice(slash + 1) };
  },
  async handleUnrouted(ctx, app) {
    ctx.set(API_VERSION_HEADER, API_VERSION);
    const rest = ctx.path.replace(/^\/v2\/?/, '');
    if (rest === 'token' && (ctx.method === 'GET' || ctx.method === 'HEAD')) return tokenEndpoint(ctx, app, null);
    if (rest !== '') throw ociError('NOT_FOUND', 'NAME_UNKNOWN', 'Repository not found');
    // The version check: clients learn the auth scheme from its challenge.
    if (!authenticated(ctx.state.principal)) throw unauthorized();
    ctx.status = 200;
    ctx.set('Content-Type', 'application/json');
    ctx.body = '{}';
  },
};

export const docker: FormatPlugin = {
  name: 'docker',
  digests: DOCKER_DIGESTS,
  sections: [
    {
      key: 'docker',
      schema: z.object({
        v1Enabled: z.boolean().default(false),
        forceBasicAuth: z.boolean().default(true),
        httpPort: z.number().int().min(1).max(65535).nullable().optional(),
        httpsPort: z.number().int().min(1).max(65535).nullable().optional(),
        latestPolicy: z.boolean().optional(),
      }),
      defaults: () => ({ v1Enabled: false, forceBasicAuth: true }),
    },
    dockerProxySection,
  ],
  rootRoutes: [pathRouted],
  tokenRealms: [DOCKER_TOKEN_REALM],
  tasks: [dockerGcTask, dockerUploadPurgeTask],
  apiRoutes: archiveRoutes,
  listenerPort: dockerListenerPort,
  listenerPortField: 'docker.httpPort',
  routes,
  renderError: renderOciError,
  isMetadata,
  upstreamUrl,
  upstreamHeaders,
  upstreamChallenge,
  proxyAsset,
  proxyExpected,
  maintain,
  reclaim: reclaimRepository,
  compareVersions,
  isPrerelease,
  componentOf,
};
