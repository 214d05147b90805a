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
  query('sha512', 'Asset SHA-512'),
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
    Storage: obj(
      {
        blobStoreName: str,
        strictContentTypeValidation: bool,
        writePolicy: { type: 'string', enum: ['ALLOW', 'ALLOW_ONCE', 'DENY'], description: 'Hosted only (default ALLOW_ONCE)' },
      },
      ['blobStoreName'],
    ),
    Cleanup: { ...obj({ policyNames: { type: 'array', items: str } }), nullable: true },
    Proxy: obj({ remoteUrl: str, contentMaxAge: { type: 'integer', default: 1440 }, metadataMaxAge: { type: 'integer', default: 1440 } }, ['remoteUrl']),
    NegativeCache: obj({ enabled: { type: 'boolean', default: true }, timeToLive: { type: 'integer', default: 1440 } }),
    HttpClient: obj({
      blocked: bool,
      autoBlock: bool,
      connection: {
        ...obj({
          retries: { type: 'integer', minimum: 0, maximum: 10, nullable: true },
          userAgentSuffix: nstr,
          timeout: { type: 'integer', minimum: 0, maximum: 3600, nullable: true },
          enableCircularRedirects: bool,
          enableCookies: bool,
          useTrustStore: bool,
        }),
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
    SoftQuota: {
      ...obj({ type: { type: 'string', enum: ['spaceRemainingQuota', 'spaceUsedQuota'] }, limit: { type: 'integer', format: 'int64', description: 'bytes' } }, ['type', 'limit']),
      nullable: true,
    },
    BlobStoreXO: obj({
      name: str,
      type: { type: 'string', enum: ['File', 'S3'] },
      unavailable: bool,
      blobCount: int,
      totalSizeInBytes: int,
      availableSpaceInBytes: { ...int, nullable: true },
      softQuota: ref('SoftQuota'),
    }),
    FileBlobStore: obj({ name: str, path: { type: 'string', description: 'Absolute, or relative to <data>/blobs' }, softQuota: ref('SoftQuota') }, ['path']),
    S3BlobStore: obj(
      {
        name: str,
        softQuota: ref('SoftQuota'),
        bucketConfiguration: obj(
          {
            bucket: obj({ region: { type: 'string', default: 'DEFAULT' }, name: str, prefix: str, expiration: { type: 'integer', default: 3 } }, ['name']),
            bucketSecurity: {
              ...obj({
                accessKeyId: str,
                secretAccessKey: { type: 'string', description: 'Write only: never returned; a PUT without it keeps the stored one' },
                role: nstr,
                sessionToken: nstr,
              }),
              nullable: true,
            },
            encryption: { ...obj({ encryptionType: nstr, encryptionKey: nstr }), nullable: true },
            advancedBucketConnection: {
              ...obj({ endpoint: nstr, signerType: nstr, forcePathStyle: bool, maxConnectionPoolSize: { type: 'integer', nullable: true } }),
              nullable: true,
            },
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
    FrequencyXO: obj(
      {
        schedule: { type: 'string', enum: ['manual', 'once', 'hourly', 'daily', 'weekly', 'monthly', 'cron'] },
        startDate: { type: 'integer', format: 'int64', description: 'Epoch milliseconds (seconds and ISO 8601 accepted). Next runs are computed in UTC.' },
        timeZoneOffset: { type: 'string', description: 'Accepted and ignored: schedules are UTC' },
        recurringDays: { type: 'array', items: { type: 'integer' }, description: 'weekly: 1–7 (1 = Sunday); monthly: 1–31, 999 = last day' },
        cronExpression: { type: 'string', description: 'Quartz 6/7 fields (`0 0 1 * * ?`) or Unix 5 fields' },
      },
      ['schedule'],
    ),
    TaskTemplateXO: obj(
      {
        type: str,
        name: str,
        enabled: bool,
        frequency: ref('FrequencyXO'),
        properties: { type: 'object', additionalProperties: { type: 'string' }, description: 'As listed by GET /tasks/types' },
      },
      ['name'],
    ),
    TaskXO: obj({
      id: str,
      name: str,
      type: str,
      enabled: bool,
      message: nstr,
      currentState: { type: 'string', enum: ['WAITING', 'RUNNING'] },
      lastRunResult: { type: 'string', enum: ['OK', 'FAILED', 'CANCELED', 'INTERRUPTED'], nullable: true },
      nextRun: { type: 'string', format: 'date-time', nullable: true },
      lastRun: { type: 'string', format: 'date-time', nullable: true },
      frequency: ref('FrequencyXO'),
      properties: { type: 'object', additionalProperties: { type: 'string' } },
      progress: { ...obj({ processed: int, total: { ...int, nullable: true } }), nullable: true, description: 'While it runs' },
    }),
    PageTaskXO: page('TaskXO'),
    TaskTypeXO: obj({
      type: str,
      name: str,
      properties: {
        type: 'array',
        items: obj({
          id: str,
          label: str,
          type: { type: 'string', enum: ['string', 'number', 'boolean', 'repository', 'blobstore'] },
          required: bool,
          default: { nullable: true },
          help: nstr,
        }),
      },
    }),
    TaskRunXO: obj({
      id: str,
      node: str,
      started: { type: 'string', format: 'date-time' },
      ended: { type: 'string', format: 'date-time', nullable: true },
      result: { type: 'string', enum: ['RUNNING', 'OK', 'FAILED', 'CANCELED', 'INTERRUPTED'] },
      message: nstr,
      processed: int,
      total: { ...int, nullable: true },
    }),
    PageTaskRunXO: page('TaskRunXO'),
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
    '/v1/status': {
      get: { tags: ['Status'], summary: 'Health check: the node can serve reads', responses: { '200': { description: 'Available' }, '503': { description: 'Unavailable' } } },
    },
    '/v1/status/writable': {
      get: { tags: ['Status'], summary: 'Health check: the node can serve writes', responses: { '200': { description: 'Writable' }, '503': { description: 'Unavailable' } } },
    },
    '/v1/status/check': {
      get: op('Status', 'System checks', 'nx-metrics-all', {
        responses: responses({ '200': R.ok({ type: 'object', additionalProperties: obj({ healthy: bool, message: nstr }) }) }),
      }),
    },

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
      get: op('Repositories', 'One repository (summary)', 'nx-repositories-read or browse on it', {
        parameters: [namePath],
        responses: responses({ '200': R.ok(ref('RepositoryXO')) }, ['notFound']),
      }),
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
      get: op('Blob stores', 'Soft quota status', 'nx-blobstores-read', {
        parameters: [path('name', 'Blob store name')],
        responses: responses({ '200': R.ok(ref('QuotaStatus')) }, ['notFound']),
      }),
    },
    '/v1/blobstores/file': {
      post: op('Blob stores', 'Create a file blob store', 'nx-blobstores-create', {
        requestBody: { required: true, ...json(ref('FileBlobStore')) },
        responses: responses({ '204': R.noContent }, ['badRequest', 'conflict']),
      }),
    },
    '/v1/blobstores/file/{name}': {
      get: op('Blob stores', 'A file blob store', 'nx-blobstores-read', {
        parameters: [path('name', 'Blob store name')],
        responses: responses({ '200': R.ok(ref('FileBlobStore')) }, ['notFound']),
      }),
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
      post: op(
        'Components',
        'Upload files as Nexus does (multipart): <format>.directory, <format>.assetN (file), <format>.assetN.filename',
        'nx-component-upload and add on the repository',
        {
          parameters: [query('repository', 'Repository name', true)],
          requestBody: {
            required: true,
            // The form's fields are named after the repository's format.
            content: { 'multipart/form-data': { schema: uploadForm(formats) } },
          },
          responses: responses({ '204': R.noContent }, ['badRequest', 'notFound']),
        },
      ),
    },
    '/v1/components/{id}': {
      get: op('Components', 'A component', 'browse on its repository', {
        parameters: [path('id', 'Component id')],
        responses: responses({ '200': R.ok(ref('ComponentXO')) }, ['notFound']),
      }),
      delete: op('Components', 'Delete a component and its assets', 'delete on its repository', {
        parameters: [path('id', 'Component id')],
        responses: responses({ '204': R.noContent }, ['notFound']),
      }),
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
      get: op('Tasks', 'List scheduled tasks', 'nx-tasks-read', {
        parameters: [query('type', 'Only tasks of this type id'), ...paging],
        responses: responses({ '200': R.ok(ref('PageTaskXO')) }, ['badRequest']),
      }),
      post: op('Tasks', 'Create a task', 'nx-tasks-create', {
        requestBody: { required: true, ...json(ref('TaskTemplateXO')) },
        responses: responses({ '201': R.ok(ref('TaskXO'), 'Created') }, ['badRequest']),
      }),
    },
    '/v1/tasks/types': {
      get: op('Tasks', 'Task types and their properties', 'nx-tasks-read', { responses: responses({ '200': R.ok({ type: 'array', items: ref('TaskTypeXO') }) }) }),
    },
    '/v1/tasks/{id}': {
      get: op('Tasks', 'A task (with its progress while it runs)', 'nx-tasks-read', {
        parameters: [path('id', 'Task id')],
        responses: responses({ '200': R.ok(ref('TaskXO')) }, ['notFound']),
      }),
      put: op('Tasks', 'Update a task (its type cannot change)', 'nx-tasks-update', {
        parameters: [path('id', 'Task id')],
        requestBody: { required: true, ...json(ref('TaskTemplateXO')) },
        responses: responses({ '200': R.ok(ref('TaskXO')) }, ['badRequest', 'notFound']),
      }),
      delete: op('Tasks', 'Delete a task and its runs', 'nx-tasks-delete', {
        parameters: [path('id', 'Task id')],
        responses: responses({ '204': R.noContent, '409': { description: 'The task is running' } }, ['notFound']),
      }),
    },
    '/v1/tasks/{id}/run': {
      post: op('Tasks', 'Start a task now (returns once started; poll the task for its result)', 'nx-tasks-run', {
        parameters: [path('id', 'Task id')],
        responses: responses({ '204': R.noContent, '405': { description: 'Task is disabled' } }, ['notFound']),
      }),
    },
    '/v1/tasks/{id}/stop': {
      post: op('Tasks', 'Stop a running task (on whichever node runs it; the run ends CANCELED)', 'nx-tasks-stop', {
        parameters: [path('id', 'Task id')],
        responses: responses({ '204': R.noContent, '409': { description: 'The task is not running' } }, ['notFound']),
      }),
    },
    '/v1/tasks/{id}/runs': {
      get: op('Tasks', 'Runs of a task, newest first', 'nx-tasks-read', {
        parameters: [path('id', 'Task id'), ...paging],
        responses: responses({ '200': R.ok(ref('PageTaskRunXO')) }, ['badRequest', 'notFound']),
      }),
    },
    '/v1/tasks/{id}/runs/{runId}/log': {
      get: op('Tasks', 'The log of a run (one `<ISO time> <line>` per line)', 'nx-tasks-read', {
        parameters: [path('id', 'Task id'), path('runId', 'Run id')],
        responses: responses({ '200': { description: 'The log', content: { 'text/plain': { schema: str } } } }, ['notFound']),
      }),
    },
  };
}

// Security: users, roles, privileges, content selectors, realms, anonymous access ------------

const ACTIONS_XO = {
  type: 'array',
  items: { type: 'string', enum: ['BROWSE', 'READ', 'EDIT', 'ADD', 'DELETE', 'CREATE', 'UPDATE', 'RUN', 'START', 'STOP', 'ASSOCIATE', 'DISASSOCIATE', 'ALL'] },
};
const strList = { type: 'array', items: str };
const PRIVILEGE_TYPE_ENUM = ['application', 'repository-view', 'repository-admin', 'repository-content-selector', 'wildcard'];

function securitySchemas(): Json {
  const user = {
    userId: str,
    firstName: str,
    lastName: str,
    emailAddress: str,
    source: { type: 'string', description: '`default` for local users; `LDAP`… for external ones' },
    status: { type: 'string', enum: ['active', 'locked', 'disabled', 'changepassword'] },
    readOnly: { type: 'boolean', description: 'True for external users (only their roles can change)' },
    roles: { ...strList, description: 'Local roles (for external users: roles mapped here)' },
    externalRoles: { ...strList, description: 'Roles (groups) the external source gives; read-only' },
  };
  return {
    ApiUser: obj(user),
    ApiCreateUser: obj({ userId: str, firstName: str, lastName: str, emailAddress: str, password: { type: 'string', writeOnly: true }, status: user.status, roles: strList }, [
      'userId',
      'password',
    ]),
    ApiUserSource: obj({ id: str, name: str }),
    RoleXORequest: obj({ id: str, name: str, description: str, privileges: strList, roles: { ...strList, description: 'Nested role ids (cycles are refused)' } }, ['id']),
    RoleXOResponse: obj({ id: str, source: str, name: str, description: str, readOnly: bool, privileges: strList, roles: strList }),
    ApiPrivilege: {
      type: 'object',
      description:
        'type, name, description, readOnly, plus per type: application {domain, actions}; repository-view and repository-admin {format, repository, actions}; repository-content-selector {contentSelector, format, repository, actions}; wildcard {pattern}',
      properties: {
        type: { type: 'string', enum: PRIVILEGE_TYPE_ENUM },
        name: str,
        description: str,
        readOnly: bool,
        domain: str,
        format: { type: 'string', description: 'A format or *' },
        repository: { type: 'string', description: 'A repository name or *' },
        contentSelector: str,
        pattern: { type: 'string', example: 'nexus:repository-view:raw:*:read' },
        actions: ACTIONS_XO,
      },
    },
    ApiPrivilegeRequest: {
      type: 'object',
      description: 'The fields of the privilege type in the path (see ApiPrivilege); name is required on create and fixed on update',
      properties: { name: str, description: str, domain: str, format: str, repository: str, contentSelector: str, pattern: str, actions: ACTIONS_XO },
    },
    ContentSelector: obj({
      name: str,
      type: { type: 'string', enum: ['csel'] },
      description: str,
      expression: { type: 'string', example: 'format == "raw" and path =^ "/team-a/"' },
    }),
    ContentSelectorRequest: obj({ name: str, description: str, expression: str }, ['expression']),
    ContentSelectorPreview: obj(
      { expression: str, repository: { type: 'string', description: 'A repository (a group: its members) or * / absent for every repository the caller may browse' }, format: str },
      ['expression'],
    ),
    RealmXO: obj({ id: str, name: str }),
    AnonymousAccessSettings: obj({ enabled: bool, userId: { type: 'string', default: 'anonymous' }, realmName: { type: 'string', default: 'NexusAuthorizingRealm' } }, ['enabled']),
  };
}

function securityPaths(): Json {
  const userId = path('userId', 'User id');
  const roleId = path('id', 'Role id');
  const privName = path('privilegeName', 'Privilege name');
  const privType = { ...path('type', 'Privilege type'), schema: { type: 'string', enum: PRIVILEGE_TYPE_ENUM } };
  const selName = path('name', 'Content selector name');
  const T = 'Security management';
  return {
    '/v1/security/users': {
      get: op(T, 'List users: local and external (LDAP) sources', 'nx-users-read', {
        parameters: [query('userId', 'Only user ids starting with this'), query('source', 'Only this source (`default` = local, `LDAP`)')],
        responses: responses({ '200': R.ok({ type: 'array', items: ref('ApiUser') }) }),
      }),
      post: op(T, 'Create a local user', 'nx-users-create', {
        requestBody: { required: true, ...json(ref('ApiCreateUser')) },
        responses: responses({ '200': R.ok(ref('ApiUser')) }, ['badRequest', 'conflict']),
      }),
    },
    '/v1/security/users/{userId}': {
      put: op(T, 'Update a user (for an external user only its local roles, kept as a role mapping)', 'nx-users-update', {
        parameters: [userId],
        requestBody: { required: true, ...json(ref('ApiUser')) },
        responses: responses({ '204': R.noContent }, ['badRequest', 'notFound']),
      }),
      delete: op(T, "Delete a local user (or an external user's role mapping)", 'nx-users-delete', {
        parameters: [userId, query('realm', 'Source of the user (default: local, else any external source)')],
        responses: responses({ '204': R.noContent }, ['badRequest', 'notFound']),
      }),
    },
    '/v1/security/users/{userId}/change-password': {
      put: {
        tags: [T],
        summary: "Change a local user's password (body: the new password as text/plain)",
        description: 'A user may always change their own password (signed in with it, not with a token); anyone else needs nx-users-update.',
        parameters: [userId],
        requestBody: { required: true, content: { 'text/plain': { schema: { type: 'string' } } } },
        responses: responses({ '204': R.noContent }, ['badRequest', 'notFound']),
      },
    },
    '/v1/security/user-sources': {
      get: op(T, 'User sources', 'nx-users-read', { responses: responses({ '200': R.ok({ type: 'array', items: ref('ApiUserSource') }) }) }),
    },
    '/v1/security/roles': {
      get: op(T, 'List roles', 'nx-roles-read', {
        parameters: [query('source', 'Only roles of this source (default)')],
        responses: responses({ '200': R.ok({ type: 'array', items: ref('RoleXOResponse') }) }),
      }),
      post: op(T, 'Create a role', 'nx-roles-create', {
        requestBody: { required: true, ...json(ref('RoleXORequest')) },
        responses: responses({ '200': R.ok(ref('RoleXOResponse')) }, ['badRequest', 'conflict']),
      }),
    },
    '/v1/security/roles/{id}': {
      get: op(T, 'A role', 'nx-roles-read', { parameters: [roleId], responses: responses({ '200': R.ok(ref('RoleXOResponse')) }, ['notFound']) }),
      put: op(T, 'Replace a role (built-in roles are read-only)', 'nx-roles-update', {
        parameters: [roleId],
        requestBody: { required: true, ...json(ref('RoleXORequest')) },
        responses: responses({ '204': R.noContent }, ['badRequest', 'notFound']),
      }),
      delete: op(T, 'Delete a role; it is removed from the roles and users holding it', 'nx-roles-delete', {
        parameters: [roleId],
        responses: responses({ '204': R.noContent }, ['badRequest', 'notFound']),
      }),
    },
    '/v1/security/privileges': {
      get: op(T, 'List privileges: built-ins (for every repository and format) and custom ones', 'nx-privileges-read', {
        responses: responses({ '200': R.ok({ type: 'array', items: ref('ApiPrivilege') }) }),
      }),
    },
    '/v1/security/privileges/{privilegeName}': {
      get: op(T, 'A privilege', 'nx-privileges-read', { parameters: [privName], responses: responses({ '200': R.ok(ref('ApiPrivilege')) }, ['notFound']) }),
      delete: op(T, 'Delete a custom privilege; it is removed from every role naming it', 'nx-privileges-delete', {
        parameters: [privName],
        responses: responses({ '204': R.noContent }, ['badRequest', 'notFound']),
      }),
    },
    '/v1/security/privileges/{type}': {
      post: op(T, 'Create a privilege of this type', 'nx-privileges-create', {
        parameters: [privType],
        requestBody: { required: true, ...json(ref('ApiPrivilegeRequest')) },
        responses: responses({ '201': R.created }, ['badRequest', 'conflict']),
      }),
    },
    '/v1/security/privileges/{type}/{privilegeName}': {
      put: op(T, 'Replace a custom privilege of this type', 'nx-privileges-update', {
        parameters: [privType, privName],
        requestBody: { required: true, ...json(ref('ApiPrivilegeRequest')) },
        responses: responses({ '204': R.noContent }, ['badRequest', 'notFound']),
      }),
    },
    '/v1/security/content-selectors': {
      get: op(T, 'List content selectors', 'nx-selectors-read', { responses: responses({ '200': R.ok({ type: 'array', items: ref('ContentSelector') }) }) }),
      post: op(T, 'Create a content selector (CSEL: format, path; ==, !=, =~, =^; and, or, parentheses)', 'nx-selectors-create', {
        requestBody: { required: true, ...json(ref('ContentSelectorRequest')) },
        responses: responses({ '204': R.noContent }, ['badRequest', 'conflict']),
      }),
    },
    '/v1/security/content-selectors/preview': {
      post: op(T, 'Preview: the assets an expression matches, among those the caller may browse (paged like /assets). Stowage extension', 'nx-selectors-read', {
        parameters: paging,
        requestBody: { required: true, ...json(ref('ContentSelectorPreview')) },
        responses: responses({ '200': R.ok(ref('PageAssetXO')) }, ['badRequest', 'notFound']),
      }),
    },
    '/v1/security/content-selectors/{name}': {
      get: op(T, 'A content selector', 'nx-selectors-read', { parameters: [selName], responses: responses({ '200': R.ok(ref('ContentSelector')) }, ['notFound']) }),
      put: op(T, 'Update a content selector', 'nx-selectors-update', {
        parameters: [selName],
        requestBody: { required: true, ...json(ref('ContentSelectorRequest')) },
        responses: responses({ '204': R.noContent }, ['badRequest', 'notFound']),
      }),
      delete: op(T, 'Delete a content selector (refused while a privilege uses it)', 'nx-selectors-delete', {
        parameters: [selName],
        responses: responses({ '204': R.noContent }, ['notFound', 'conflict']),
      }),
    },
    '/v1/security/realms/available': {
      get: op(T, 'Realms this server has', 'nx-settings-read', { responses: responses({ '200': R.ok({ type: 'array', items: ref('RealmXO') }) }) }),
    },
    '/v1/security/realms/active': {
      get: op(T, 'Active realm ids, in order', 'nx-settings-read', { responses: responses({ '200': R.ok(strList) }) }),
      put: op(T, 'Set the active realms, in order', 'nx-settings-update', {
        requestBody: { required: true, ...json(strList) },
        responses: responses({ '204': R.noContent }, ['badRequest']),
      }),
    },
    '/v1/security/anonymous': {
      get: op(T, 'Anonymous access settings', 'nx-settings-read', { responses: responses({ '200': R.ok(ref('AnonymousAccessSettings')) }) }),
      put: op(T, 'Switch anonymous access (takes effect at once)', 'nx-settings-update', {
        requestBody: { required: true, ...json(ref('AnonymousAccessSettings')) },
        responses: responses({ '200': R.ok(ref('AnonymousAccessSettings')) }, ['badRequest']),
      }),
    },
  };
}

// Security: LDAP servers -----------------------------------------------------------------------

function ldapSchemas(): Json {
  const fields: Json = {
    name: str,
    protocol: { type: 'string', enum: ['ldap', 'ldaps'] },
    useTrustStore: { type: 'boolean', description: 'Stored; ldaps certificates are verified against the CA list of the Node runtime (NODE_EXTRA_CA_CERTS adds more)' },
    host: str,
    port: { type: 'integer', minimum: 1, maximum: 65535, description: 'Default 389 (ldap) or 636 (ldaps)' },
    searchBase: { type: 'string', example: 'dc=example,dc=com' },
    authScheme: { type: 'string', enum: ['NONE', 'SIMPLE'], description: 'NONE: anonymous searches; SIMPLE: bind as authUsername (DIGEST_MD5 and CRAM_MD5 are refused)' },
    authRealm: str,
    authUsername: { type: 'string', description: 'Bind DN of the service account (SIMPLE)' },
    connectionTimeoutSeconds: {
      type: 'integer',
      minimum: 1,
      maximum: 3600,
      default: 30,
      description: 'Bounds the connect and every operation: an unreachable server never holds a login longer',
    },
    connectionRetryDelaySeconds: { type: 'integer', minimum: 0, default: 300, description: 'How long a failing server is skipped' },
    maxIncidentsCount: { type: 'integer', minimum: 0, default: 3, description: 'Consecutive failures before the server is skipped for the retry delay' },
    userBaseDn: { type: 'string', description: 'Relative to searchBase, e.g. ou=people' },
    userSubtree: bool,
    userObjectClass: { type: 'string', default: 'inetOrgPerson' },
    userLdapFilter: { type: 'string', description: 'Extra filter users must match, e.g. (memberOf=cn=staff,ou=groups,dc=example,dc=com)' },
    userIdAttribute: { type: 'string', default: 'uid' },
    userRealNameAttribute: { type: 'string', default: 'cn' },
    userEmailAddressAttribute: { type: 'string', default: 'mail' },
    userPasswordAttribute: { type: 'string', description: 'Blank: passwords are checked by binding as the user; else compared with this attribute' },
    ldapGroupsAsRoles: { type: 'boolean', default: true, description: 'LDAP groups become roles: a role whose id is the group name grants its privileges' },
    groupType: { type: 'string', enum: ['static', 'dynamic'] },
    groupBaseDn: { type: 'string', description: 'Relative to searchBase (static groups)' },
    groupSubtree: bool,
    groupObjectClass: { type: 'string', default: 'groupOfNames' },
    groupIdAttribute: { type: 'string', default: 'cn' },
    groupMemberAttribute: { type: 'string', default: 'member' },
    groupMemberFormat: { type: 'string', default: '${dn}', description: '${dn}, ${username}, or a DN template such as uid=${username},ou=people,dc=example,dc=com' },
    userMemberOfAttribute: { type: 'string', default: 'memberOf', description: 'Dynamic groups: the group id is the first RDN value of each value' },
  };
  return {
    CreateLdapServerXo: {
      ...obj(
        {
          ...fields,
          authPassword: {
            type: 'string',
            writeOnly: true,
            description: 'Write only: never returned. On update, leaving it out keeps the stored one unless host, port, protocol or authUsername change',
          },
        },
        ['name', 'host', 'searchBase'],
      ),
    },
    ReadLdapServerXo: obj({ id: str, order: { type: 'integer', description: '1-based position in which servers are asked' }, ...fields }),
    LdapVerifyLogin: {
      allOf: [ref('CreateLdapServerXo'), obj({ username: str, password: { type: 'string', writeOnly: true } }, ['username', 'password'])],
      description: 'The configuration plus the credentials to try (alternatively {server, username, password})',
    },
    LdapUserXO: obj({ username: str, realName: str, email: str, membership: { type: 'array', items: str } }),
  };
}

function ldapPaths(): Json {
  const T = 'Security management: LDAP';
  const name = path('name', 'LDAP server name');
  const verify = 'nx-ldap-update or nx-ldap-create';
  const config = { required: true, ...json(ref('CreateLdapServerXo')) };
  return {
    '/v1/security/ldap': {
      get: op(T, 'List LDAP servers in the order they are asked (bind passwords are never returned)', 'nx-ldap-read', {
        responses: responses({ '200': R.ok({ type: 'array', items: ref('ReadLdapServerXo') }) }),
      }),
      post: op(T, 'Add an LDAP server (asked after the existing ones)', 'nx-ldap-create', {
        requestBody: config,
        responses: responses({ '201': R.created }, ['badRequest', 'conflict']),
      }),
    },
    '/v1/security/ldap/{name}': {
      get: op(T, 'An LDAP server', 'nx-ldap-read', { parameters: [name], responses: responses({ '200': R.ok(ref('ReadLdapServerXo')) }, ['notFound']) }),
      put: op(T, 'Replace an LDAP server configuration (may rename it)', 'nx-ldap-update', {
        parameters: [name],
        requestBody: config,
        responses: responses({ '204': R.noContent }, ['badRequest', 'notFound', 'conflict']),
      }),
      delete: op(T, 'Delete an LDAP server', 'nx-ldap-delete', { parameters: [name], responses: responses({ '204': R.noContent }, ['notFound']) }),
    },
    '/v1/security/ldap/change-order': {
      post: op(T, 'Set the order servers are asked in: the names given first, any left out after them', 'nx-ldap-update', {
        requestBody: { required: true, ...json({ type: 'array', items: str }) },
        responses: responses({ '204': R.noContent }, ['badRequest']),
      }),
    },
    '/v1/security/ldap/clear-cache': {
      post: op(T, 'Forget cached LDAP logins and retry skipped servers at once', 'nx-ldap-delete', { responses: responses({ '204': R.noContent }) }),
    },
    '/v1/security/ldap/verify-connection': {
      post: op(T, 'Connect, bind and read the search base with a configuration (not saved)', verify, {
        requestBody: config,
        responses: responses({ '204': { description: 'Connection verified' }, '400': { description: "Invalid configuration, or the server's error", ...json(ref('Error')) } }),
      }),
    },
    '/v1/security/ldap/verify-user-mapping': {
      post: op(T, 'The first users (up to 20) the user and group mapping finds', verify, {
        requestBody: config,
        responses: responses({
          '200': R.ok({ type: 'array', items: ref('LdapUserXO') }),
          '400': { description: "Invalid configuration, or the server's error", ...json(ref('Error')) },
        }),
      }),
    },
    '/v1/security/ldap/verify-login': {
      post: op(T, 'Try a login with a configuration (not saved)', verify, {
        requestBody: { required: true, ...json(ref('LdapVerifyLogin')) },
        responses: responses({
          '204': { description: 'Login succeeded' },
          '400': { description: 'Invalid configuration, user not found, wrong password, or the server error', ...json(ref('Error')) },
        }),
      }),
    },
  };
}

function tokenAndAuditSchemas(): Json {
  const token = {
    id: str,
    name: str,
    userId: str,
    source: str,
    scope: { type: 'string', enum: ['read', 'write'] },
    kind: str,
    created: { type: 'string', format: 'date-time' },
    expires: { type: 'string', format: 'date-time', nullable: true },
    expired: bool,
    lastUsed: { type: 'string', format: 'date-time', nullable: true },
  };
  return {
    UserTokenXO: obj(token),
    UserTokenCreatedXO: obj({ ...token, token: { type: 'string', description: 'The secret: shown once, never again' } }),
    UserTokenCreate: obj(
      {
        name: str,
        scope: { type: 'string', enum: ['read', 'write'], default: 'write' },
        expiresAt: { type: 'string', format: 'date-time', nullable: true },
        expiresInDays: { type: 'number', nullable: true },
      },
      ['name'],
    ),
    AuditEventXO: obj({
      id: str,
      timestamp: { type: 'string', format: 'date-time' },
      domain: str,
      type: str,
      context: str,
      initiator: str,
      remoteAddress: str,
      attributes: { type: 'object', additionalProperties: true },
    }),
    PageAuditEventXO: page('AuditEventXO'),
  };
}

function tokenAndAuditPaths(): Json {
  const T = 'Security management: user tokens';
  const own = 'an authenticated user (own tokens); nx-apikey-all for ?userId=';
  const userId = query('userId', "Another user's tokens (administrators with nx-apikey-all)");
  return {
    '/v1/security/user-tokens': {
      get: op(T, 'List API tokens (never their secrets)', own, { parameters: [userId], responses: responses({ '200': R.ok({ type: 'array', items: ref('UserTokenXO') }) }) }),
      post: op(
        T,
        'Create an API token; the response carries its secret once. Usable as a Bearer token or as the Basic password of its user.',
        'an authenticated user signed in without a token',
        {
          requestBody: { required: true, ...json(ref('UserTokenCreate')) },
          responses: responses({ '201': R.ok(ref('UserTokenCreatedXO')) }, ['badRequest']),
        },
      ),
    },
    '/v1/security/user-tokens/{id}': {
      delete: op(T, 'Revoke an API token', own, { parameters: [path('id', 'Token id'), userId], responses: responses({ '204': R.noContent }, ['notFound']) }),
    },
    '/v1/audit': {
      get: op('Audit', 'Audit events (configuration and security changes, content deletions), oldest first', 'nx-audit-read', {
        parameters: [
          query('domain', 'e.g. security.user, repository.repository, repository.asset'),
          query('type', 'e.g. created, updated, deleted'),
          query('initiator', 'User id'),
          query('context', 'What the event is about (exact)'),
          query('since', 'ISO date-time, inclusive'),
          query('until', 'ISO date-time, exclusive'),
          ...paging,
        ],
        responses: responses({ '200': R.ok(ref('PageAuditEventXO')) }, ['badRequest']),
      }),
    },
  };
}

/** Endpoints formats add (`FormatPlugin.apiRoutes`), under `/v1/<format>/…`, tagged with the format. */
function formatPaths(formats: FormatPlugin[]): Json {
  const out: Record<string, Json> = {};
  for (const f of formats) {
    for (const r of f.apiRoutes ?? []) {
      const p = `/v1/${f.name}${r.path}`;
      out[p] = { ...(out[p] ?? {}), [r.method.toLowerCase()]: { tags: [f.name], ...r.openapi } };
    }
  }
  return out;
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
    paths: { ...pathsFor(formats), ...formatPaths(formats), ...securityPaths(), ...ldapPaths(), ...tokenAndAuditPaths() },
    components: {
      securitySchemes: { basicAuth: { type: 'http', scheme: 'basic' }, bearerAuth: { type: 'http', scheme: 'bearer' } },
      schemas: { ...schemasFor(formats), ...securitySchemas(), ...ldapSchemas(), ...tokenAndAuditSchemas() },
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
