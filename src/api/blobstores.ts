import type Koa from 'koa';
import { z } from 'zod';
import type { Stowage } from '../stowage.js';
import { badRequest, notFound } from '../errors.js';
import { auditOrigin } from '../http/auth.js';
import type { BlobStoreRow } from '../blob/blob-stores.js';
import { fileBody, fileStoreXO, parseFileStore, parseS3Store, quotaStatus, s3Body, s3StoreXO, softQuotaOf, typeName } from './blobstore-xo.js';
import { route, type ApiRoute } from './route.js';
import {
  BlobStoreXO,
  FileBlobStore,
  QuotaStatus,
  S3BlobStore,
  badRequest as badRequestXO,
  conflict,
  created,
  noContent,
  notFound as notFoundXO,
  ok,
  params,
  pathParam,
} from './schemas.js';

/** Settings that say where the bytes are: changing them under existing blobs would lose them. */
const LOCATION: Record<string, string[]> = { file: ['path'], s3: ['bucket', 'prefix', 'endpoint'] };

async function typed(app: Stowage, type: string, name: string): Promise<BlobStoreRow> {
  const store = await app.blobStores.require(name);
  if (store.type !== type) throw notFound(`Blob store '${name}' is not a ${typeName(type)} blob store`);
  return store;
}

async function checkRelocation(app: Stowage, store: BlobStoreRow, next: Record<string, unknown>): Promise<void> {
  const moved = (LOCATION[store.type] ?? []).find((k) => (store.attributes[k] ?? null) !== (next[k] ?? null));
  if (!moved) return;
  if ((await app.blobs.usage(store.id)).blobCount > 0) {
    throw badRequest(`${moved}: blob store '${store.name}' holds blobs; its ${moved} cannot be changed`, { field: moved });
  }
}

/** Stored settings for the audit log: the secret key replaced by a marker. */
function auditAttributes(attributes: Record<string, unknown>): Record<string, unknown> {
  const { secretAccessKey, ...rest } = attributes;
  return secretAccessKey ? { ...rest, secretAccessKey: '<secret>' } : rest;
}

async function audited(app: Stowage, ctx: Koa.Context, type: string, name: string, attributes: Record<string, unknown>): Promise<void> {
  await app.audit.record(auditOrigin(ctx), { domain: 'blobstore', type, context: name, attributes });
}

/** Nexus BlobStoreXO: usage from the blob rows, availability and free space from the driver. */
async function blobStoreXO(app: Stowage, store: BlobStoreRow) {
  const usage = await app.blobs.usage(store.id);
  let unavailable = false;
  let available: number | null = null;
  try {
    const driver = await app.blobStores.driver(store.id);
    await driver.check();
    available = (await driver.available?.()) ?? null;
  } catch {
    unavailable = true;
  }
  return {
    softQuota: softQuotaOf(store),
    name: store.name,
    type: typeName(store.type),
    unavailable,
    blobCount: usage.blobCount,
    totalSizeInBytes: usage.totalSize,
    availableSpaceInBytes: available,
  };
}

const tags = ['Blob stores'];
const named = params({ name: pathParam('Blob store name') });
const read = { privilege: 'nx-blobstores-read' };
const update = { privilege: 'nx-blobstores-update' };
const create = { privilege: 'nx-blobstores-create' };

/**
 * Blob stores, Nexus-shaped: the list with usage, file and S3 CRUD (S3 settings in Nexus's nested
 * bucketConfiguration), delete, and quota status.
 */
export function blobStoreRoutes(app: Stowage): ApiRoute[] {
  return [
    route({
      method: 'GET',
      path: '/blobstores',
      operationId: 'listBlobStores',
      tags,
      summary: 'List blob stores with usage',
      access: read,
      responses: { 200: ok(z.array(BlobStoreXO)) },
      handler: async (ctx) => {
        ctx.body = await Promise.all((await app.blobStores.list()).map((store) => blobStoreXO(app, store)));
      },
    }),
    route({
      method: 'DELETE',
      path: '/blobstores/:name',
      operationId: 'deleteBlobStore',
      tags,
      summary: 'Delete an unused, empty blob store',
      access: { privilege: 'nx-blobstores-delete' },
      params: named,
      responses: { 204: noContent, 404: notFoundXO, 409: conflict },
      handler: async (ctx) => {
        const store = await app.blobStores.require(ctx.params.name);
        await app.blobStores.delete(store.name);
        await audited(app, ctx, 'deleted', store.name, { type: store.type, before: auditAttributes(store.attributes) });
        ctx.status = 204;
      },
    }),
    route({
      method: 'GET',
      path: '/blobstores/:name/quota-status',
      operationId: 'quotaStatus',
      tags,
      summary: 'Soft quota status',
      access: read,
      params: named,
      responses: { 200: ok(QuotaStatus), 404: notFoundXO },
      handler: async (ctx) => {
        const store = await app.blobStores.require(ctx.params.name);
        const usage = await app.blobs.usage(store.id);
        const available = (await (await app.blobStores.driver(store.id)).available?.().catch(() => null)) ?? null;
        ctx.body = quotaStatus(store, usage.totalSize, available);
      },
    }),

    // File -------------------------------------------------------------------------------------
    route({
      method: 'POST',
      path: '/blobstores/file',
      operationId: 'createFileBlobStore',
      tags,
      summary: 'Create a file blob store',
      access: create,
      body: { schema: fileBody, validate: true },
      responses: { 204: noContent, 400: badRequestXO, 409: conflict },
      handler: async (ctx, input) => {
        const s = parseFileStore(await input.body());
        await app.blobStores.create(s.name, 'file', s.attributes);
        await audited(app, ctx, 'created', s.name, { type: 'file', after: auditAttributes(s.attributes) });
        ctx.status = 204;
      },
    }),
    route({
      method: 'GET',
      path: '/blobstores/file/:name',
      operationId: 'getFileBlobStore',
      tags,
      summary: 'A file blob store',
      access: read,
      params: named,
      responses: { 200: ok(FileBlobStore), 404: notFoundXO },
      handler: async (ctx) => {
        ctx.body = fileStoreXO(await typed(app, 'file', ctx.params.name));
      },
    }),
    route({
      method: 'PUT',
      path: '/blobstores/file/:name',
      operationId: 'updateFileBlobStore',
      tags,
      summary: 'Update a file blob store (the path is fixed once it holds blobs)',
      access: update,
      params: named,
      body: { schema: fileBody, validate: true },
      responses: { 204: noContent, 400: badRequestXO, 404: notFoundXO },
      handler: async (ctx, input) => {
        const store = await typed(app, 'file', ctx.params.name);
        const s = parseFileStore(await input.body(), store.name);
        await checkRelocation(app, store, s.attributes);
        await app.blobStores.update(store.name, s.attributes);
        await audited(app, ctx, 'updated', store.name, { type: 'file', before: auditAttributes(store.attributes), after: auditAttributes(s.attributes) });
        ctx.status = 204;
      },
    }),

    // S3 ---------------------------------------------------------------------------------------
    route({
      method: 'POST',
      path: '/blobstores/s3',
      operationId: 'createS3BlobStore',
      tags,
      summary: 'Create an S3 blob store (any S3-compatible service via endpoint)',
      access: create,
      body: { schema: s3Body, validate: true },
      responses: { 201: created, 400: badRequestXO, 409: conflict },
      handler: async (ctx, input) => {
        const s = parseS3Store(await input.body());
        await app.blobStores.create(s.name, 's3', s.attributes);
        await audited(app, ctx, 'created', s.name, { type: 's3', after: auditAttributes(s.attributes) });
        ctx.status = 201;
        ctx.body = '';
      },
    }),
    route({
      method: 'GET',
      path: '/blobstores/s3/:name',
      operationId: 'getS3BlobStore',
      tags,
      summary: 'An S3 blob store (the secret access key is never returned)',
      access: read,
      params: named,
      responses: { 200: ok(S3BlobStore), 404: notFoundXO },
      handler: async (ctx) => {
        ctx.body = s3StoreXO(await typed(app, 's3', ctx.params.name));
      },
    }),
    route({
      method: 'PUT',
      path: '/blobstores/s3/:name',
      operationId: 'updateS3BlobStore',
      tags,
      summary: 'Update an S3 blob store (bucket, prefix and endpoint are fixed once it holds blobs)',
      access: update,
      params: named,
      body: { schema: s3Body, validate: true },
      responses: { 204: noContent, 400: badRequestXO, 404: notFoundXO },
      handler: async (ctx, input) => {
        const store = await typed(app, 's3', ctx.params.name);
        const s = parseS3Store(await input.body(), store.name, store.attributes);
        await checkRelocation(app, store, s.attributes);
        await app.blobStores.update(store.name, s.attributes);
        await audited(app, ctx, 'updated', store.name, {
          type: 's3',
          before: auditAttributes(store.attributes),
          after: auditAttributes(s.attributes),
          // A new key arrives plain; the kept one is the stored (encrypted) value.
          credentialsChanged: typeof s.attributes.secretAccessKey === 'string' && !app.secrets.isEncrypted(s.attributes.secretAccessKey),
        });
        ctx.status = 204;
      },
    }),
  ];
}
