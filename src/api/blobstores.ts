import Router from '@koa/router';
import type Koa from 'koa';
import type { Stowage } from '../stowage.js';
import { badRequest, notFound } from '../errors.js';
import { auditOrigin, requireApp } from '../http/auth.js';
import type { BlobStoreRow } from '../blob/blob-stores.js';
import { readJson } from './body.js';
import { fileStoreXO, parseFileStore, parseS3Store, quotaStatus, s3StoreXO, softQuotaOf, typeName } from './blobstore-xo.js';

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

/**
 * Blob stores, Nexus-shaped: the list with usage, file and S3 CRUD (S3 settings in Nexus's nested
 * bucketConfiguration), delete, and quota status.
 */
export function blobStoreRoutes(app: Stowage): Router {
  const r = new Router();
  const maxJson = app.config.http.maxJsonBytes;
  const body = (ctx: Koa.Context) => readJson(ctx, maxJson);

  r.get('/blobstores', async (ctx) => {
    await requireApp(app, ctx, 'nx-blobstores-read');
    ctx.body = await Promise.all((await app.blobStores.list()).map((store) => blobStoreXO(app, store)));
  });

  r.delete('/blobstores/:name', async (ctx) => {
    await requireApp(app, ctx, 'nx-blobstores-delete');
    const store = await app.blobStores.require(ctx.params.name);
    await app.blobStores.delete(store.name);
    await audited(app, ctx, 'deleted', store.name, { type: store.type, before: auditAttributes(store.attributes) });
    ctx.status = 204;
  });

  r.get('/blobstores/:name/quota-status', async (ctx) => {
    await requireApp(app, ctx, 'nx-blobstores-read');
    const store = await app.blobStores.require(ctx.params.name);
    const usage = await app.blobs.usage(store.id);
    const available = (await (await app.blobStores.driver(store.id)).available?.().catch(() => null)) ?? null;
    ctx.body = quotaStatus(store, usage.totalSize, available);
  });

  // File ---------------------------------------------------------------------------------------
  r.post('/blobstores/file', async (ctx) => {
    await requireApp(app, ctx, 'nx-blobstores-create');
    const s = parseFileStore(await body(ctx));
    await app.blobStores.create(s.name, 'file', s.attributes);
    await audited(app, ctx, 'created', s.name, { type: 'file', after: auditAttributes(s.attributes) });
    ctx.status = 204;
  });

  r.get('/blobstores/file/:name', async (ctx) => {
    await requireApp(app, ctx, 'nx-blobstores-read');
    ctx.body = fileStoreXO(await typed(app, 'file', ctx.params.name));
  });

  r.put('/blobstores/file/:name', async (ctx) => {
    await requireApp(app, ctx, 'nx-blobstores-update');
    const store = await typed(app, 'file', ctx.params.name);
    const s = parseFileStore(await body(ctx), store.name);
    await checkRelocation(app, store, s.attributes);
    await app.blobStores.update(store.name, s.attributes);
    await audited(app, ctx, 'updated', store.name, { type: 'file', before: auditAttributes(store.attributes), after: auditAttributes(s.attributes) });
    ctx.status = 204;
  });

  // S3 -----------------------------------------------------------------------------------------
  r.post('/blobstores/s3', async (ctx) => {
    await requireApp(app, ctx, 'nx-blobstores-create');
    const s = parseS3Store(await body(ctx));
    await app.blobStores.create(s.name, 's3', s.attributes);
    await audited(app, ctx, 'created', s.name, { type: 's3', after: auditAttributes(s.attributes) });
    ctx.status = 201;
    ctx.body = '';
  });

  r.get('/blobstores/s3/:name', async (ctx) => {
    await requireApp(app, ctx, 'nx-blobstores-read');
    ctx.body = s3StoreXO(await typed(app, 's3', ctx.params.name));
  });

  r.put('/blobstores/s3/:name', async (ctx) => {
    await requireApp(app, ctx, 'nx-blobstores-update');
    const store = await typed(app, 's3', ctx.params.name);
    const s = parseS3Store(await body(ctx), store.name, store.attributes);
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
  });

  return r;
}
