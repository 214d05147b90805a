import { z } from 'zod';
import type { ApiResponse } from './route.js';

/**
 * Shapes of the REST API (Nexus's XOs) as zod schemas: the OpenAPI document is generated from
 * them. Those with a `.meta({ id })` become named components; the rest are inlined.
 */

export const str = z.string();
export const nstr = z.string().nullable();
export const bool = z.boolean();
export const int = z.int();
export const strList = z.array(z.string());
export const dateTime = z.string().meta({ format: 'date-time' });
export const nDateTime = dateTime.nullable();

export const ErrorXO = z.object({ status: int, message: str }).meta({ id: 'Error' });
export const ValidationErrorXO = z.object({ id: str.meta({ example: 'PARAMETER name' }), message: str }).meta({ id: 'ValidationError' });

// Responses ---------------------------------------------------------------------------------

export const ok = (schema: z.ZodType, description = 'OK'): ApiResponse => ({ description, schema });
export const noContent: ApiResponse = { description: 'Done (no content)' };
export const created: ApiResponse = { description: 'Created' };
export const badRequest: ApiResponse = { description: 'Invalid request: `[{"id":"PARAMETER <field>","message":"…"}]`', schema: z.array(ValidationErrorXO) };
export const notFound: ApiResponse = { description: 'Not found', schema: ErrorXO };
export const conflict: ApiResponse = { description: 'Conflict (already exists, in use)', schema: ErrorXO };

// Parameters --------------------------------------------------------------------------------

/** A path parameter's schema. */
export const pathParam = (description: string) => z.string().describe(description);
export const params = (shape: Record<string, z.ZodType>) => z.object(shape);

export const paging = {
  continuationToken: z.string().optional().describe('Opaque token from the previous page'),
  limit: z.int().min(1).max(1000).optional().describe('Page size (Stowage extension; default 100, at most 1000). Alias: pageSize'),
};

export const page = <T extends z.ZodType>(item: T, id: string) => z.object({ items: z.array(item), continuationToken: nstr }).meta({ id });

// Repositories ------------------------------------------------------------------------------

export const RepositoryXO = z
  .object({
    name: str,
    format: str,
    type: z.enum(['hosted', 'proxy', 'group']),
    url: str,
    attributes: z.object({ proxy: z.object({ remoteUrl: str }).optional() }),
  })
  .meta({ id: 'RepositoryXO' });

export const RepositoryStatus = z
  .object({
    name: str,
    format: str,
    type: str,
    online: bool,
    blocked: bool.optional().describe('Proxy only'),
    autoBlocked: bool.optional().describe('Proxy only: blocked because the remote failed'),
    blockedUntil: nstr.optional().describe('Proxy only'),
    failures: int.optional().describe('Proxy only: consecutive upstream failures'),
    lastError: nstr.optional().describe('Proxy only'),
  })
  .meta({ id: 'RepositoryStatus' });

// Blob stores -------------------------------------------------------------------------------

export const SoftQuota = z
  .object({ type: z.enum(['spaceRemainingQuota', 'spaceUsedQuota']), limit: int.describe('bytes') })
  .nullable()
  .meta({ id: 'SoftQuota' });

export const BlobStoreXO = z
  .object({
    name: str,
    type: z.enum(['File', 'S3']),
    unavailable: bool,
    blobCount: int,
    totalSizeInBytes: int,
    availableSpaceInBytes: int.nullable(),
    softQuota: SoftQuota,
  })
  .meta({ id: 'BlobStoreXO' });

export const FileBlobStore = z
  .object({ name: str.optional(), path: str.describe('Absolute, or relative to <data>/blobs'), softQuota: SoftQuota.optional() })
  .meta({ id: 'FileBlobStore' });

export const S3BlobStore = z
  .object({
    name: str.optional(),
    softQuota: SoftQuota.optional(),
    bucketConfiguration: z.object({
      bucket: z.object({ region: str.default('DEFAULT'), name: str, prefix: str.optional(), expiration: int.default(3) }),
      bucketSecurity: z
        .object({
          accessKeyId: str.optional(),
          secretAccessKey: str.optional().describe('Write only: never returned; a PUT without it keeps the stored one'),
          role: nstr.optional(),
          sessionToken: nstr.optional(),
        })
        .nullable()
        .optional(),
      encryption: z.object({ encryptionType: nstr.optional(), encryptionKey: nstr.optional() }).nullable().optional(),
      advancedBucketConnection: z
        .object({ endpoint: nstr.optional(), signerType: nstr.optional(), forcePathStyle: bool.optional(), maxConnectionPoolSize: int.nullable().optional() })
        .nullable()
        .optional(),
    }),
  })
  .meta({ id: 'S3BlobStore' });

export const QuotaStatus = z.object({ isViolation: bool, message: str, blobStoreName: str }).meta({ id: 'QuotaStatus' });

// Components and assets ---------------------------------------------------------------------

export const AssetXO = z
  .object({
    id: str,
    path: str,
    downloadUrl: str,
    repository: str,
    format: str,
    checksum: z
      .object({ sha1: str.optional(), sha256: str, md5: str.optional(), sha512: str.optional(), blake2b256: str.optional() })
      .describe('The digests known for the blob: one no format that stored the bytes needed is left out until the "compute missing digests" task ran'),
    contentType: str,
    lastModified: dateTime,
    lastDownloaded: nDateTime,
    uploader: nstr,
    uploaderIp: nstr,
    fileSize: int,
    blobCreated: dateTime,
    blobStoreName: str,
  })
  .meta({ id: 'AssetXO' });

export const ComponentXO = z.object({ id: str, repository: str, format: str, group: nstr, name: str, version: nstr, assets: z.array(AssetXO) }).meta({ id: 'ComponentXO' });

export const PageComponentXO = page(ComponentXO, 'PageComponentXO');
export const PageAssetXO = page(AssetXO, 'PageAssetXO');

export const searchQuery = {
  repository: z.string().optional().describe('Repository name (a group searches its members)'),
  format: z.string().optional().describe('Repository format'),
  group: z.string().optional().describe('Component group / namespace; `*` is a wildcard'),
  name: z.string().optional().describe('Component name; `*` is a wildcard'),
  version: z.string().optional().describe('Component version; `*` is a wildcard'),
  q: z.string().optional().describe('Keyword matched against group, name and version'),
  sha256: z.string().optional().describe('Asset SHA-256'),
  sha1: z.string().optional().describe('Asset SHA-1'),
  md5: z.string().optional().describe('Asset MD5'),
  sha512: z.string().optional().describe('Asset SHA-512'),
};

// Tasks -------------------------------------------------------------------------------------

export const FrequencyXO = z
  .object({
    schedule: z.enum(['manual', 'once', 'hourly', 'daily', 'weekly', 'monthly', 'cron']),
    startDate: int.optional().describe('Epoch milliseconds (seconds and ISO 8601 accepted). Next runs are computed in UTC.'),
    timeZoneOffset: str.optional().describe('Accepted and ignored: schedules are UTC'),
    recurringDays: z.array(int).optional().describe('weekly: 1–7 (1 = Sunday); monthly: 1–31, 999 = last day'),
    cronExpression: str.optional().describe('Quartz 6/7 fields (`0 0 1 * * ?`) or Unix 5 fields'),
  })
  .meta({ id: 'FrequencyXO' });

export const TaskTemplateXO = z
  .object({
    type: str.optional(),
    name: str,
    enabled: bool.optional(),
    frequency: FrequencyXO.optional(),
    properties: z.record(z.string(), z.unknown()).optional().describe('As listed by GET /tasks/types'),
  })
  .meta({ id: 'TaskTemplateXO' });

export const TaskXO = z
  .object({
    id: str,
    name: str,
    type: str,
    enabled: bool,
    message: nstr,
    currentState: z.enum(['WAITING', 'RUNNING']),
    lastRunResult: z.enum(['OK', 'FAILED', 'CANCELED', 'INTERRUPTED']).nullable(),
    nextRun: nDateTime,
    lastRun: nDateTime,
    frequency: FrequencyXO,
    properties: z.record(z.string(), z.string()),
    progress: z.object({ processed: int, total: int.nullable() }).nullable().describe('While it runs'),
  })
  .meta({ id: 'TaskXO' });

export const PageTaskXO = page(TaskXO, 'PageTaskXO');

export const TaskTypeXO = z
  .object({
    type: str,
    name: str,
    properties: z.array(
      z.object({
        id: str,
        label: str,
        type: z.enum(['string', 'number', 'boolean', 'repository', 'blobstore']),
        required: bool,
        default: z.unknown(),
        help: nstr,
      }),
    ),
  })
  .meta({ id: 'TaskTypeXO' });

export const TaskRunXO = z
  .object({
    id: str,
    node: str,
    started: dateTime,
    ended: nDateTime,
    result: z.enum(['RUNNING', 'OK', 'FAILED', 'CANCELED', 'INTERRUPTED']),
    message: nstr,
    processed: int,
    total: int.nullable(),
  })
  .meta({ id: 'TaskRunXO' });

export const PageTaskRunXO = page(TaskRunXO, 'PageTaskRunXO');

// Audit and user tokens ---------------------------------------------------------------------

export const AuditEventXO = z
  .object({
    id: str,
    timestamp: dateTime,
    domain: str,
    type: str,
    context: str,
    initiator: str,
    remoteAddress: str,
    attributes: z.record(z.string(), z.unknown()),
  })
  .meta({ id: 'AuditEventXO' });

export const PageAuditEventXO = page(AuditEventXO, 'PageAuditEventXO');

const token = {
  id: str,
  name: str,
  userId: str,
  source: str,
  scope: z.enum(['read', 'write']),
  kind: str,
  created: dateTime,
  expires: nDateTime,
  expired: bool,
  lastUsed: nDateTime,
};
export const UserTokenXO = z.object(token).meta({ id: 'UserTokenXO' });
export const UserTokenCreatedXO = z.object({ ...token, token: str.describe('The secret: shown once, never again') }).meta({ id: 'UserTokenCreatedXO' });
