import { z } from 'zod';
import { badRequest } from '../errors.js';
import type { BlobStoreRow } from '../blob/blob-stores.js';
import { isEncryptedValue } from '../security/secrets.js';

/** Nexus soft quota: an alert threshold in bytes, never a hard limit. */
export interface SoftQuota {
  type: 'spaceRemainingQuota' | 'spaceUsedQuota';
  limit: number;
}

const softQuota = z
  .object({ type: z.enum(['spaceRemainingQuota', 'spaceUsedQuota']), limit: z.number().int().min(0) })
  .nullable()
  .optional();
const optionalString = z.string().nullable().optional();

/** `POST|PUT /blobstores/file` (validated by the route; also its documentation). */
export const fileBody = z
  .object({ name: z.string().min(1).optional(), path: z.string().min(1).describe('Absolute, or relative to <data>/blobs'), softQuota })
  .meta({ id: 'FileBlobStoreRequest' });

/** `POST|PUT /blobstores/s3`, Nexus's nested shape (validated by the route; also its documentation). */
export const s3Body = z
  .object({
    name: z.string().min(1).optional(),
    softQuota,
    bucketConfiguration: z.object({
      bucket: z.object({
        region: z.string().min(1).default('DEFAULT'),
        name: z.string().min(3).max(63),
        prefix: optionalString,
        expiration: z.number().int().min(-1).default(3),
      }),
      bucketSecurity: z
        .object({
          accessKeyId: optionalString,
          secretAccessKey: optionalString.describe('Write only: never returned; a PUT without it keeps the stored one'),
          role: optionalString,
          sessionToken: optionalString,
        })
        .nullable()
        .optional(),
      encryption: z.object({ encryptionType: optionalString, encryptionKey: optionalString }).nullable().optional(),
      advancedBucketConnection: z
        .object({
          endpoint: optionalString,
          signerType: optionalString,
          forcePathStyle: z.boolean().nullable().optional(),
          maxConnectionPoolSize: z.number().int().nullable().optional(),
        })
        .nullable()
        .optional(),
    }),
  })
  .meta({ id: 'S3BlobStoreRequest' });

/** A name in the body must agree with the name in the URL (PUT) — and is required on create. */
function nameOf(body: { name?: string }, urlName: string | undefined): string {
  if (urlName === undefined) {
    if (!body.name) throw badRequest('name: is required', { field: 'name' });
    return body.name;
  }
  if (body.name !== undefined && body.name !== urlName) throw badRequest(`name: a blob store cannot be renamed ('${urlName}' → '${body.name}')`, { field: 'name' });
  return urlName;
}

/** `POST|PUT /blobstores/file`: name and the stored attributes. */
export function parseFileStore(b: z.output<typeof fileBody>, urlName?: string): { name: string; attributes: Record<string, unknown> } {
  return { name: nameOf(b, urlName), attributes: { path: b.path, ...(b.softQuota ? { softQuota: b.softQuota } : {}) } };
}

/**
 * `POST|PUT /blobstores/s3`: Nexus's nested bucket configuration → the S3 driver's flat settings.
 * A PUT without the secret keeps the stored one (GET never returns it).
 */
export function parseS3Store(b: z.output<typeof s3Body>, urlName?: string, current?: Record<string, unknown>): { name: string; attributes: Record<string, unknown> } {
  const { bucket, bucketSecurity: sec, advancedBucketConnection: adv, encryption } = b.bucketConfiguration;
  if (sec?.role) throw badRequest('bucketConfiguration.bucketSecurity.role: assuming an IAM role is not supported', { field: 'bucketConfiguration.bucketSecurity.role' });
  if (sec?.sessionToken) {
    throw badRequest('bucketConfiguration.bucketSecurity.sessionToken: session tokens are not supported; use AWS_SESSION_TOKEN', {
      field: 'bucketConfiguration.bucketSecurity.sessionToken',
    });
  }
  if (encryption?.encryptionType && encryption.encryptionType !== 'none') {
    throw badRequest('bucketConfiguration.encryption.encryptionType: server-side encryption settings are not supported', {
      field: 'bucketConfiguration.encryption.encryptionType',
    });
  }
  if (adv?.endpoint && !/^https?:\/\/[^/?#]+\/?$/i.test(adv.endpoint)) {
    throw badRequest('bucketConfiguration.advancedBucketConnection.endpoint: must be an http:// or https:// URL without a path', {
      field: 'bucketConfiguration.advancedBucketConnection.endpoint',
    });
  }
  const attributes: Record<string, unknown> = { bucket: bucket.name, expiration: bucket.expiration };
  if (bucket.region !== 'DEFAULT') attributes.region = bucket.region;
  if (bucket.prefix) attributes.prefix = bucket.prefix;
  if (adv?.endpoint) attributes.endpoint = adv.endpoint;
  if (adv?.forcePathStyle !== null && adv?.forcePathStyle !== undefined) attributes.forcePathStyle = adv.forcePathStyle;
  if (adv?.signerType) attributes.signerType = adv.signerType;
  // The key itself, never a stored ciphertext: that would be decrypted and used (a decryption oracle).
  if (sec?.secretAccessKey && isEncryptedValue(sec.secretAccessKey)) {
    throw badRequest('bucketConfiguration.bucketSecurity.secretAccessKey: must be the key itself', { field: 'bucketConfiguration.bucketSecurity.secretAccessKey' });
  }
  if (sec?.accessKeyId) {
    attributes.accessKeyId = sec.accessKeyId;
    const keep = current && current.accessKeyId === sec.accessKeyId ? current.secretAccessKey : undefined;
    const secret = sec.secretAccessKey || keep;
    if (!secret)
      throw badRequest('bucketConfiguration.bucketSecurity.secretAccessKey: is required with an access key id', { field: 'bucketConfiguration.bucketSecurity.secretAccessKey' });
    attributes.secretAccessKey = secret;
  }
  if (b.softQuota) attributes.softQuota = b.softQuota;
  return { name: nameOf(b, urlName), attributes };
}

const TYPE_NAMES: Record<string, string> = { file: 'File', s3: 'S3' };

/** Nexus spells blob store types capitalised (`File`, `S3`). */
export function typeName(type: string): string {
  return TYPE_NAMES[type] ?? type;
}

export function softQuotaOf(store: BlobStoreRow): SoftQuota | null {
  return (store.attributes.softQuota as SoftQuota | undefined) ?? null;
}

export function fileStoreXO(store: BlobStoreRow) {
  return { name: store.name, path: String(store.attributes.path), softQuota: softQuotaOf(store) };
}

/** The S3 configuration in Nexus's shape; the secret access key is never returned. */
export function s3StoreXO(store: BlobStoreRow) {
  const a = store.attributes as Record<string, string | boolean | number | undefined>;
  return {
    name: store.name,
    softQuota: softQuotaOf(store),
    bucketConfiguration: {
      bucket: { region: a.region ?? 'DEFAULT', name: a.bucket, prefix: a.prefix ?? '', expiration: a.expiration ?? 3 },
      bucketSecurity: a.accessKeyId ? { accessKeyId: a.accessKeyId, role: null, sessionToken: null } : null,
      encryption: null,
      advancedBucketConnection: { endpoint: a.endpoint ?? null, signerType: a.signerType ?? 'DEFAULT', forcePathStyle: a.forcePathStyle ?? false, maxConnectionPoolSize: null },
    },
  };
}

/** Nexus BlobStoreQuotaResultXO. */
export function quotaStatus(store: BlobStoreRow, totalSize: number, available: number | null) {
  const q = softQuotaOf(store);
  if (!q) return { isViolation: false, message: `Blob store ${store.name} has no quota`, blobStoreName: store.name };
  if (q.type === 'spaceUsedQuota') {
    const v = totalSize > q.limit;
    return {
      isViolation: v,
      message: `Blob store ${store.name} is using ${totalSize} bytes ${v ? 'and exceeds' : 'within'} its limit of ${q.limit} bytes`,
      blobStoreName: store.name,
    };
  }
  if (available === null) return { isViolation: false, message: `Blob store ${store.name} cannot report its free space`, blobStoreName: store.name };
  const v = available < q.limit;
  return {
    isViolation: v,
    message: `Blob store ${store.name} has ${available} bytes available; ${v ? 'below' : 'above'} its quota of ${q.limit} bytes`,
    blobStoreName: store.name,
  };
}
