import Router from '@koa/router';
import { z } from 'zod';
import type { Stowage } from '../stowage.js';
import type { FormatPlugin } from '../repository/format.js';

/**
 * The OpenAPI 3 document of the REST API, hand-written next to the routers it describes
 * (`/service/rest/swagger.json`, alias `/service/rest/v1/openapi.json`).
 */

type Json = Record<string, unknown>;

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown) => ({ content: { 'application/json': { schema } } });
const path = (name: string, description: string) => ({ name, in: 'path', required: true, description, schema: { type: 'string' } });
const query = (name: string, description: string, required = false, schema: Json = { type: 'string' }) => ({ name, in: 'query', required, description, schema });

const R = {
  ok: (schema: unknown, description = 'OK') => ({ description, ...json(schema) }),
  noContent: { description: 'Done (no content)' },
  created: { description: 'Created' },
  badRequest: { description: 'Invalid request: `[{"id":"PARAMETER <field>","message":"…"}]`', ...json({ type: 'array', items: ref('ValidationError') }) },
  unauthorized: { description: 'Authentication required (WWW-Authenticate: Basic)' },
  forbidden: { description: 'Not permitted' },
  notFound: { description: 'Not found', ...json(ref('Error')) },
  conflict: { description: 'Conflict (already exists, in use)', ...json(ref('Error')) },
};

/** Responses every authenticated operation may give, plus the given ones. */
function responses(own: Json, extra: Array<keyof typeof R> = []): Json {
  const out: Json = { ...own, '401': R.unauthorized, '403': R.forbidden };
  const codes: Record<string, string> = { badRequest: '400', notFound: '404', conflict: '409' };
  for (const e of extra) out[codes[e]] = R[e];
  return out;
}

const paging = [
  query('continuationToken', 'Opaque token from the previous page'),
  query('limit', 'Page size (Stowage extension; default 100, at most 1000). Alias: pageSize', false, { type: 'integer', minimum: 1, maximum: 1000 }),
];

const searchParams = [
  query('repository', 'Repository name (a group searches its members)'),
  query('format', 'Repository format'),
  query('group', 'Component group / namespace; `*` is a wildcard'),
  query('name', 'Component name; `*` is a wildcard'),
  query('version', 'Component version; `*` is a wildcard'),
  query('q', 'Keyword matched against group, name and version'),
  query('sha256', 'Asset SHA-256'),
  query('sha1', 'Asset SHA-1'),
  query('md5', 'Asset MD5'),
];

const page = (item: string) => ({
  type: 'object',
  required: ['items', 'continuationToken'],
  properties: { items: { type: 'array', items: ref(item) }, continuationToken: { type: 'string', nullable: true } },
});

const str = { type: 'string' };
const nstr = { type: 'string', nullable: true };
const bool = { type: 'boolean' };
const int = { type: 'integer', format: 'int64' };
const obj = (properties: Json, required: string[] = []) => ({ type: 'object', properties, ...(required.length ? { required } : {}) });

/** A format section's JSON Schema, from the zod schema the format validates it with. */
function sectionSchema(schema: z.ZodType): Json {
  try {
    const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Json;
    return rest;
  } catch {
    return { type: 'object' };
  }
}

/** `<format>.directory`, `<format>.assetN`, `<format>.assetN.filename` for every format. */
function uploadForm(formats: FormatPlugin[]): Json {
  const properties: Json = {};
  for (const f of formats) {
    properties[`${f.name}.directory`] = { type: 'string', description: `Folder for the files (${f.name} repositories)` };
    properties[`${f.name}.asset1`] = { type: 'string', format: 'binary', description: 'A file; further files are asset2, asset3, …' };
    properties[`${f.name}.asset1.filename`] = { type: 'string', description: 'Its file name (required; may contain folders)' };
  }
  return { type: 'object', properties };
}

function schemasFor(formats: FormatPlugin[]): Json {
  return {
    Error: obj({ status: int, message: str }),
    ValidationError: obj({ id: { type: 'string', example: 'PARAMETER name' }, message: str }),
    RepositoryXO: obj({ name: str, format: str, type: { type: 'string', enum: ['hosted', 'proxy', 'group'] }, url: str, attributes: obj({ proxy: obj({ remoteUrl: str }) }) }),
    Storage: obj({ blobStoreName: str, strictContentTypeValidation: bool, writePolicy: { type: 'string', enum: ['ALLOW', 'ALLOW_ONCE', 'DENY'], description: 'Hosted only (default ALLOW_ONCE)' } }, ['blobStoreName']),
    Cleanup: { ...obj({ policyNames: { type: 'array', items: str } }), nullable: true },
    Proxy: obj({ remoteUrl: str, contentMaxAge: { type: 'integer', default: 1440 }, metadataMaxAge: { type: 'integer', default: 1440 } }, ['remoteUrl']),
    NegativeCache: obj({ enabled: { type: 'boolean', default: true }, timeToLive: { type: 'integer', default: 1440 } }),
    HttpClient: obj({
      blocked: bool,
      autoBlock: bool,
      connection: {
        ...obj({ retries: { type: 'integer', minimum: 0, maximum: 10, nullable: true }, userAgentSuffix: nstr, timeout: { type: 'integer', minimum: 0, maximum: 3600, nullable: true }, enableCircularRedirects: bool, enableCookies: bool, useTrustStore: bool }),
        nullable: true,
      },
      authentication: {
        ...obj({
          type: { type: 'string', enum: ['username', 'bearerToken', 'ntlm'] },
          username: nstr,
          password: { type: 'string', nullable: true, description: 'Write only: always null in responses; a PUT without it keeps the stored one' },
          bearerToken: { type: 'string', nullable: true, description: 'Write only, like password' },
          ntlmHost: nstr,
          ntlmDomain: nstr,
          preemptive: bool,
        }),
        nullable: true,
      },
    }),
    Group: obj({ memberNames: { type: 'array', items: str }, writableMember: nstr }),
    RepositoryConfig: {
      type: 'object',
      description:
        'Nexus repository configuration. Sections by type: hosted (storage.writePolicy, component), proxy (proxy, negativeCache, httpClient, routingRuleName), group (group). ' +
        'Format sections ride along under their Nexus name (listed below for the formats this server has).',
      required: ['name'],
      properties: {
        name: { type: 'string', pattern: '^[A-Za-z0-9\\-][A-Za-z0-9._\\-]*$' },
        online: { type: 'boolean', default: true },
        storage: ref('Storage'),
        cleanup: ref('Cleanup'),
        proxy: ref('Proxy'),
        negativeCache: ref('NegativeCache'),
        httpClient: ref('HttpClient'),
        routingRuleName: nstr,
        group: ref('Group'),
        ...Object.fromEntries(formats.flatMap((f) => (f.sections ?? []).map((sec) => [sec.key, sectionSchema(sec.schema)]))),
      },
      additionalProperties: true,
    },
    RepositorySettings: {
      allOf: [ref('RepositoryConfig'), obj({ format: str, type: str, url: str })],
    },
    RepositoryStatus: obj({
      name: str,
      format: str,
      type: str,
      online: bool,
      blocked: { type: 'boolean', description: 'Proxy only' },
      autoBlocked: { type: 'boolean', description: 'Proxy only: blocked because the remote failed' },
      blockedUntil: { type: 'string', nullable: true, description: 'Proxy only' },
      failures: { type: 'integer', description: 'Proxy only: consecutive upstream failures' },
      lastError: { type: 'string', nullable: true, description: 'Proxy only' },
    }),
    SoftQuota: { ...obj({ type: { type: 'string', enum: ['spaceRemainingQuota', 'spaceUsedQuota'] }, limit: { type: 'integer', format: 'int64', description: 'bytes' } }, ['type', 'limit']), nullable: true },
    BlobStoreXO: obj({ name: str, type: { type: 'string', enum: ['File', 'S3'] }, unavailable: bool, blobCount: int, totalSizeInBytes: int, availableSpaceInBytes: { ...int, nullable: true }, softQuota: ref('SoftQuota') }),
    FileBlobStore: obj({ name: str, path: { type: 'string', description: 'Absolute, or relative to <data>/blobs' }, softQuota: ref('SoftQuota') }, ['path']),
    S3BlobStore: obj(
      {
        name: str,
        softQuota: ref('SoftQuota'),
        bucketConfiguration: obj(
          {
            bucket: obj({ region: { type: 'string', default: 'DEFAULT' }, name: str, prefix: str, expiration: { type: 'integer', default: 3 } }, ['name']),
            bucketSecurity: { ...obj({ accessKeyId: str, secretAccessKey: { type: 'string', description: 'Write only: never returned; a PUT without it keeps the stored one' }, role: nstr, sessionToken: nstr }), nullable: true },
            encryption: { ...obj({ encryptionType: nstr, encryptionKey: nstr }), nullable: true },
            advancedBucketConnection: { ...obj({ endpoint: nstr, signerType: nstr, forcePathStyle: bool, maxConnectionPoolSize: { type: 'integer', nullable: true } }), nullable: true },
          },
          ['bucket'],
        ),
      },
      ['bucketConfiguration'],
    ),
    QuotaStatus: obj({ isViolation: bool, message: str, blobStoreName: str }),
    AssetXO: obj({
      id: str,
      path: str,
      downloadUrl: str,
      repository: str,
      format: str,
      checksum: obj({ sha1: str, sha256: str, md5: str }),
      contentType: str,
      lastModified: { type: 'string', format: 'date-time' },
      lastDownloaded: { type: 'string', format: 'date-time', nullable: true },
      uploader: nstr,
      uploaderIp: nstr,
      fileSize: int,
      blobCreated: { type: 'string', format: 'date-time' },
      blobStoreName: str,
    }),
    ComponentXO: obj({ id: str, repository: str, format: str, group: nstr, name: str, version: nstr, assets: { type: 'array', items: ref('AssetXO') } }),
    PageComponentXO: page('ComponentXO'),
    PageAssetXO: page('AssetXO'),
    TaskXO: obj({ id: str, name: str, type: str, message: nstr, currentState: str, lastRunResult: nstr, nextRun: { type: 'string', format: 'date-time', nullable: true }, lastRun: { type: 'string', format: 'date-time', nullable: true } }),
    PageTaskXO: page('TaskXO'),
  };
}

const typePath = { ...path('type', 'Repository type'), schema: { type: 'string', enum: ['hosted', 'proxy', 'group'] } };
const namePath = path('repositoryName', 'Repository name');

function op(tag: string, summary: string, privilege: string, extra: Json): Json {
  return { tags: [tag], summary, description: `Requires ${privilege}.`, ...extra };
}

function pathsFor(formats: FormatPlugin[]): Json {
  const formatPath = { ...path('format', 'Repository format'), schema: { type: 'string', enum: formats.map((f) => f.name) } };
  return {
    '/v1/status': { get: { tags: ['Status'], summary: 'Health check: the node can serve reads', responses: { '200': { description: 'Available' }, '503': { description: 'Unavailable' } } } },
    '/v1/status/writable': { get: { tags: ['Status'], summary: 'Health check: the node can serve writes', responses: { '200': { description: 'Writable' }, '503': { description: 'Unavailable' } } } },
    '/v1/status/check': { get: op('Status', 'System checks', 'nx-metrics-all', { responses: responses({ '200': R.ok({ type: 'object', additionalProperties: obj({ healthy: bool, message: nstr }) }) }) }) },

    '/v1/repositories': {
      get: op('Repositories', 'List the repositories the caller may browse', 'nx-repositories-read, or browse on each repository listed', {
        responses: responses({ '200': R.ok({ type: 'array', items: ref('RepositoryXO') }) }),
      }),
    },
    '/v1/repositorySettings': {
      get: op('Repositories', 'Full configuration of every repository the caller may administer', 'nx-repository-admin-<format>-<repo>-read per repository', {
        responses: responses({ '200': R.ok({ type: 'array', items: ref('RepositorySettings') }) }),
      }),
    },
    '/v1/repositories/{repositoryName}': {
      get: op('Repositories', 'One repository (summary)', 'nx-repositories-read or browse on it', { parameters: [namePath], responses: responses({ '200': R.ok(ref('RepositoryXO')) }, ['notFound']) }),
      delete: op('Repositories', 'Delete a repository and its content (bytes are reclaimed by the blob GC task)', 'nx-repository-admin-<format>-<repo>-delete', {
        parameters: [namePath],
        responses: responses({ '204': R.noContent }, ['notFound']),
      }),
    },
    '/v1/repositories/{repositoryName}/invalidate-cache': {
      post: op('Repositories', 'Invalidate the cache of a proxy or group repository', 'nx-repository-admin-<format>-<repo>-edit', {
        parameters: [namePath],
        responses: responses({ '204': R.noContent }, ['badRequest', 'notFound']),
      }),
    },
    '/v1/repositories/{repositoryName}/status': {
      get: op('Repositories', 'Online state, and for proxies the upstream state (blocked, auto-blocked, failures). Stowage extension', 'nx-repository-admin-<format>-<repo>-read', {
        parameters: [namePath],
        responses: responses({ '200': R.ok(ref('RepositoryStatus')) }, ['notFound']),
      }),
    },
    '/v1/repositories/{format}/{type}': {
      post: op('Repositories', 'Create a repository from a Nexus configuration (defaults filled)', 'nx-repository-admin-<format>-<repo>-add', {
        parameters: [formatPath, typePath],
        requestBody: { required: true, ...json(ref('RepositoryConfig')) },
        responses: responses({ '201': R.created }, ['badRequest', 'conflict']),
      }),
    },
    '/v1/repositories/{format}/{type}/{repositoryName}': {
      get: op('Repositories', 'A repository configuration (secrets returned as null)', 'nx-repository-admin-<format>-<repo>-read', {
        parameters: [formatPath, typePath, namePath],
        responses: responses({ '200': R.ok(ref('RepositorySettings')) }, ['badRequest', 'notFound']),
      }),
      put: op('Repositories', 'Replace a repository configuration (name, format, type and blob store are fixed)', 'nx-repository-admin-<format>-<repo>-edit', {
        parameters: [formatPath, typePath, namePath],
        requestBody: { required: true, ...json(ref('RepositoryConfig')) },
        responses: responses({ '204': R.noContent }, ['badRequest', 'notFound']),
      }),
    },

    '/v1/blobstores': {
      get: op('Blob stores', 'List blob stores with usage', 'nx-blobstores-read', { responses: responses({ '200': R.ok({ type: 'array', items: ref('BlobStoreXO') }) }) }),
    },
    '/v1/blobstores/{name}': {
      delete: op('Blob stores', 'Delete an unused, empty blob store', 'nx-blobstores-delete', {
        parameters: [path('name', 'Blob store name')],
        responses: responses({ '204': R.noContent }, ['notFound', 'conflict']),
      }),
    },
    '/v1/blobstores/{name}/quota-status': {
      get: op('Blob stores', 'Soft quota status', 'nx-blobstores-read', { parameters: [path('name', 'Blob store name')], responses: responses({ '200': R.ok(ref('QuotaStatus')) }, ['notFound']) }),
    },
    '/v1/blobstores/file': {
      post: op('Blob stores', 'Create a file blob store', 'nx-blobstores-create', {
        requestBody: { required: true, ...json(ref('FileBlobStore')) },
        responses: responses({ '204': R.noContent }, ['badRequest', 'conflict']),
      }),
    },
    '/v1/blobstores/file/{name}': {
      get: op('Blob stores', 'A file blob store', 'nx-blobstores-read', { parameters: [path('name', 'Blob store name')], responses: responses({ '200': R.ok(ref('FileBlobStore')) }, ['notFound']) }),
      put: op('Blob stores', 'Update a file blob store (the path is fixed once it holds blobs)', 'nx-blobstores-update', {
        parameters: [path('name', 'Blob store name')],
        requestBody: { required: true, ...json(ref('FileBlobStore')) },
        responses: responses({ '204': R.noContent }, ['badRequest', 'notFound']),
      }),
    },
    '/v1/blobstores/s3': {
      post: op('Blob stores', 'Create an S3 blob store (any S3-compatible service via endpoint)', 'nx-blobstores-create', {
        requestBody: { required: true, ...json(ref('S3BlobStore')) },
        responses: responses({ '201': R.created }, ['badRequest', 'conflict']),
      }),
    },
    '/v1/blobstores/s3/{name}': {
      get: op('Blob stores', 'An S3 blob store (the secret access key is never returned)', 'nx-blobstores-read', {
        parameters: [path('name', 'Blob store name')],
        responses: responses({ '200': R.ok(ref('S3BlobStore')) }, ['notFound']),
      }),
      put: op('Blob stores', 'Update an S3 blob store (bucket, prefix and endpoint are fixed once it holds blobs)', 'nx-blobstores-update', {
        parameters: [path('name', 'Blob store name')],
        requestBody: { required: true, ...json(ref('S3BlobStore')) },
        responses: responses({ '204': R.noContent }, ['badRequest', 'notFound']),
      }),
    },

    '/v1/components': {
      get: op('Components', "List a repository's components", 'browse on the repository', {
        parameters: [query('repository', 'Repository name (a group lists its members)', true), ...paging],
        responses: responses({ '200': R.ok(ref('PageComponentXO')) }, ['badRequest', 'notFound']),
      }),
      post: op('Components', 'Upload files as Nexus does (multipart): <format>.directory, <format>.assetN (file), <format>.assetN.filename', 'nx-component-upload and add on the repository', {
        parameters: [query('repository', 'Repository name', true)],
        requestBody: {
          required: true,
          // The form's fields are named after the repository's format.
          content: { 'multipart/form-data': { schema: uploadForm(formats) } },
        },
        responses: responses({ '204': R.noContent }, ['badRequest', 'notFound']),
      }),
    },
    '/v1/components/{id}': {
      get: op('Components', 'A component', 'browse on its repository', { parameters: [path('id', 'Component id')], responses: responses({ '200': R.ok(ref('ComponentXO')) }, ['notFound']) }),
      delete: op('Components', 'Delete a component and its assets', 'delete on its repository', { parameters: [path('id', 'Component id')], responses: responses({ '204': R.noContent }, ['notFound']) }),
    },
    '/v1/assets': {
      get: op('Assets', "List a repository's assets", 'browse on the repository', {
        parameters: [query('repository', 'Repository name (a group lists its members)', true), ...paging],
        responses: responses({ '200': R.ok(ref('PageAssetXO')) }, ['badRequest', 'notFound']),
      }),
    },
    '/v1/assets/{id}': {
      get: op('Assets', 'An asset', 'browse on its repository', { parameters: [path('id', 'Asset id')], responses: responses({ '200': R.ok(ref('AssetXO')) }, ['notFound']) }),
      delete: op('Assets', 'Delete an asset', 'delete on its repository', { parameters: [path('id', 'Asset id')], responses: responses({ '204': R.noContent }, ['notFound']) }),
    },

    '/v1/search': {
      get: op('Search', 'Search components (only repositories the caller may browse)', 'nx-search-read', {
        parameters: [...searchParams, ...paging],
        responses: responses({ '200': R.ok(ref('PageComponentXO')) }, ['badRequest']),
      }),
    },
    '/v1/search/assets': {
      get: op('Search', 'Search assets (only repositories the caller may browse)', 'nx-search-read', {
        parameters: [...searchParams, ...paging],
        responses: responses({ '200': R.ok(ref('PageAssetXO')) }, ['badRequest']),
      }),
    },
    '/v1/search/assets/download': {
      get: op('Search', "Redirect to the first matching asset's downloadUrl (sort=version: the highest version)", 'nx-search-read', {
        parameters: [...searchParams, query('sort', 'version'), query('direction', 'asc or desc (default desc)')],
        responses: responses({ '302': { description: 'Redirect to the asset' } }, ['badRequest', 'notFound']),
      }),
    },

    '/v1/tasks': {
      get: op('Tasks', 'List scheduled tasks', 'nx-tasks-read', { parameters: [query('type', 'Only tasks of this type id')], responses: responses({ '200': R.ok(ref('PageTaskXO')) }) }),
    },
    '/v1/tasks/{id}': {
      get: op('Tasks', 'A task', 'nx-tasks-read', { parameters: [path('id', 'Task id')], responses: responses({ '200': R.ok(ref('TaskXO')) }, ['notFound']) }),
    },
    '/v1/tasks/{id}/run': {
      post: op('Tasks', 'Start a task now (returns at once; poll the task for its result)', 'nx-tasks-run', {
        parameters: [path('id', 'Task id')],
        responses: responses({ '204': R.noContent, '405': { description: 'Task is disabled' } }, ['notFound']),
      }),
    },
  };
}

/** The document for this server's formats: their config sections, upload fields and names. */
export function openApiDocument(formats: FormatPlugin[], version = '0.1.0'): Json {
  return {
    openapi: '3.0.3',
    info: {
      title: 'Stowage REST API',
      version,
      description: 'Nexus Repository 3 compatible REST API. Lists page with continuationToken; `limit` (alias `pageSize`) sets the page size.',
    },
    servers: [{ url: '/service/rest' }],
    security: [{ basicAuth: [] }, { bearerAuth: [] }],
    paths: pathsFor(formats),
    components: {
      securitySchemes: { basicAuth: { type: 'http', scheme: 'basic' }, bearerAuth: { type: 'http', scheme: 'bearer' } },
      schemas: schemasFor(formats),
    },
  };
}

/** Served without authentication, as Nexus serves its swagger.json. */
export function openApiRoutes(app: Stowage): Router {
  const r = new Router();
  const doc = openApiDocument([...app.formats.values()]);
  const serve = (ctx: { body: unknown }) => void (ctx.body = doc);
  r.get('/swagger.json', serve);
  r.get('/v1/openapi.json', serve);
  return r;
}
