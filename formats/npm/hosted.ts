/**
 * Writes to an npm hosted repository (publish, deprecate, unpublish, dist-tags). The packument
 * is the stored source of truth (a metadata asset at `<name>`), tarballs are content assets at
 * `<name>/-/<file>` with a component (scope, name, version). Every change is: stage new bytes →
 * one transaction (the packument must still be the one read, else retry; write policy; tarball,
 * packument and dist-tag rows) → settle, or discard on failure: nothing partial is ever visible.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { AppError } from '../../src/errors.js';
import { readSmall, type StagedBlob } from '../../src/blob/blob-service.js';
import { isUniqueViolation, type Tx } from '../../src/db/db.js';
import type { ContentRequest } from '../../src/repository/format.js';
import type { GroupRepository, Repository } from '../../src/repository/repository.js';
import type { Stowage } from '../../src/stowage.js';
import { readPackument } from './documents.js';
import { scanPublishBody, type ScannedPublish } from './publish-body.js';
import { own, parseClientJson } from './safe-json.js';
import { searchAttributes } from './search.js';
import { tarballRefusal } from './validate.js';
import {
  NpmInputError,
  applyPublish,
  applyUpdate,
  invalidName,
  parsePublish,
  setDistTag,
  splitName,
  tarballBasename,
  tarballPath,
  versionOfFile,
  type Packument,
} from './packument.js';

/** Largest JSON body of metadata requests, and of a publish without its tarball: 413 above it. */
export const MAX_PUBLISH_BYTES = 100 * 1024 * 1024;
/** Largest publish document apart from the tarball (readme, manifest…). */
const MAX_DOCUMENT_BYTES = 32 * 1024 * 1024;
/** Largest tarball accepted. */
const MAX_TARBALL_BYTES = 2 * 1024 * 1024 * 1024;
const OCTET = 'application/octet-stream';
const JSON_TYPE = 'application/json';

class Changed extends Error {}
/** Tries of one change when other nodes keep committing changes of the same package first. */
const MAX_ATTEMPTS = 30;

/** The hosted repository a write addressed to `req.repo` lands in (a group's writable member). */
export async function writeTarget(req: ContentRequest): Promise<Repository> {
  let repo = req.repo;
  if (repo.type === 'group') repo = await (repo as GroupRepository).writableMember();
  if (repo.type !== 'hosted' || repo.format !== req.repo.format) {
    throw new AppError('METHOD_NOT_ALLOWED', `Repository '${repo.name}' (${repo.type}) does not accept publishing`);
  }
  if (repo.config.storage.writePolicy === 'DENY') throw new AppError('WRITE_POLICY', `Repository is read only: ${repo.name}`);
  return repo;
}

async function current(repo: Repository, name: string): Promise<{ doc: Packument | null; assetId: number | null; blobId: number | null }> {
  const c = await repo.local(name);
  if (!c) return { doc: null, assetId: null, blobId: null };
  return { doc: await readPackument(c), assetId: c.asset.id, blobId: c.blob.id };
}

async function stageJson(app: Stowage, repo: Repository, doc: unknown): Promise<StagedBlob> {
  return app.blobs.stage(repo.blobStoreId, Readable.from([Buffer.from(JSON.stringify(doc))]));
}

async function syncTags(app: Stowage, tx: Tx, repo: Repository, name: string, before: Record<string, string>, after: Record<string, string>): Promise<void> {
  for (const t of Object.keys(before)) if (!(t in after)) await app.content.deleteTag(tx, repo.id, name, t);
  for (const [t, v] of Object.entries(after)) if (before[t] !== v) await app.content.setTag(tx, repo.id, name, t, v);
}

/** Changes of one package on this node run one at a time (across nodes the optimistic check decides). */
const queues = new Map<string, Promise<unknown>>();
function serialized<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const prev = queues.get(key) ?? Promise.resolve();
  const run = prev.then(fn, fn);
  const tail = run.catch(() => undefined);
  queues.set(key, tail);
  void tail.then(() => {
    if (queues.get(key) === tail) queues.delete(key);
  });
  return run;
}

/**
 * Read the packument, compute the change, commit it only if the packument is still the one read
 * (another node may have committed a change of the same package meanwhile: then compute again).
 */
function change(
  app: Stowage,
  repo: Repository,
  name: string,
  compute: Parameters<typeof changeOnce>[3],
): Promise<Packument | null> {
  return serialized(`${repo.id}\n${name}`, () => changeOnce(app, repo, name, compute));
}

async function changeOnce(
  app: Stowage,
  repo: Repository,
  name: string,
  compute: (doc: Packument | null) => { doc: Packument | null; tarball?: { staged: StagedBlob; file: string; version: string; attributes?: Record<string, unknown> }; removeFiles?: string[] },
): Promise<Packument | null> {
  for (let attempt = 0; ; attempt++) {
    const cur = await current(repo, name);
    const next = compute(cur.doc);
    const docStaged = next.doc ? await stageJson(app, repo, next.doc) : null;
    const staged = [next.tarball?.staged, docStaged].filter((s): s is StagedBlob => !!s);
    try {
      await app.db.transaction(async (tx) => {
        // The packument must still be the one read. The row is locked (PostgreSQL: a concurrent
        // writer waits, then reads the committed row and retries; SQLite runs one writer at a
        // time); a first publish racing another first publish loses on the unique path instead.
        if (cur.assetId !== null) {
          const row = await tx('assets').where({ id: cur.assetId }).forUpdate().first('blob_id');
          if (!row || Number(row.blob_id) !== cur.blobId) throw new Changed();
        } else if (await app.content.findAsset(repo.id, name, tx)) throw new Changed();
        if (next.tarball) {
          const t = next.tarball;
          const blob = await app.blobs.attach(tx, t.staged);
          const { scope, bare } = splitName(name);
          await app.content.putAsset(tx, {
            repositoryId: repo.id,
            path: tarballPath(name, t.file),
            blobId: blob.id,
            contentType: OCTET,
            kind: 'content',
            component: { namespace: scope ?? '', name: bare, version: t.version, attributes: t.attributes },
            attributes: { packageName: name, version: t.version },
          });
        }
        for (const f of next.removeFiles ?? []) await app.content.deleteAsset(repo.id, tarballPath(name, f), tx);
        if (next.doc) {
          const blob = await app.blobs.attach(tx, docStaged!);
          await app.content.putAsset(tx, { repositoryId: repo.id, path: name, blobId: blob.id, contentType: JSON_TYPE, kind: 'metadata', attributes: { packageName: name } });
        } else if (cur.assetId) {
          await app.content.deleteAsset(repo.id, name, tx);
        }
        await syncTags(app, tx, repo, name, cur.doc?.['dist-tags'] ?? {}, next.doc?.['dist-tags'] ?? {});
      });
    } catch (err) {
      const e = isUniqueViolation(err) ? new Changed() : err;
      if (docStaged) await app.blobs.discard(docStaged);
      // Another node committed first: read again, after a random pause that grows (capped), so
      // two busy nodes do not keep colliding.
      if (e instanceof Changed && attempt < MAX_ATTEMPTS) {
        await new Promise((r) => setTimeout(r, Math.random() * Math.min(250, 5 * 2 ** attempt)));
        continue;
      }
      if (next.tarball) await app.blobs.discard(next.tarball.staged);
      if (e instanceof Changed) throw new AppError('CONFLICT', `Package ${name} is being changed concurrently; try again`);
      throw e;
    }
    for (const s of staged) await app.blobs.settle(s);
    return next.doc;
  }
}

function inputError(e: unknown): never {
  if (e instanceof NpmInputError) throw new AppError('BAD_REQUEST', e.message);
  throw e;
}

/** `sha512-<base64>` entries of an SRI string. */
function sha512Of(integrity: unknown): string[] {
  if (typeof integrity !== 'string') return [];
  return integrity
    .split(/\s+/)
    .filter((s) => s.startsWith('sha512-'))
    .map((s) => s.slice(7).split('?')[0]);
}

export async function readJsonBody(req: ContentRequest, max = MAX_PUBLISH_BYTES): Promise<unknown> {
  const declared = Number(req.ctx.get('Content-Length') || NaN);
  if (declared > max) throw new AppError('PAYLOAD_TOO_LARGE', `Request body of ${declared} bytes exceeds the limit of ${max} bytes`);
  const buf = await readSmall(req.ctx.req, max);
  try {
    return parseClientJson(buf.toString('utf8'));
  } catch (e) {
    if (e instanceof NpmInputError) throw new AppError('BAD_REQUEST', `Request body refused: ${e.message}`);
    throw new AppError('BAD_REQUEST', 'Request body is not valid JSON');
  }
}

/** `PUT /<name>`: a publish (the body carries a tarball) or a metadata update (deprecate, unpublish of versions). */
export async function putPackage(req: ContentRequest, name: string, viaRev: boolean): Promise<number> {
  const repo = await writeTarget(req);
  const { app } = req;
  const declared = Number(req.ctx.get('Content-Length') || NaN);
  if (declared > MAX_TARBALL_BYTES + MAX_DOCUMENT_BYTES) throw new AppError('PAYLOAD_TOO_LARGE', `Request body of ${declared} bytes exceeds the limit`);
  // The tarball goes to the blob store while the body arrives (decoded from base64, hashed once more for sha512).
  let staging: Promise<StagedBlob> | null = null;
  let scanned: ScannedPublish;
  try {
    scanned = await scanPublishBody(req.ctx.req, MAX_DOCUMENT_BYTES, (a) => {
      staging = app.blobs.stage(repo.blobStoreId, a.stream, { maxSize: MAX_TARBALL_BYTES });
      staging.catch((e: Error) => a.stream.destroy(e));
    });
  } catch (e) {
    if (staging) await (staging as Promise<StagedBlob>).then((st) => app.blobs.discard(st), () => undefined);
    throw e;
  }
  let tarball: Tarball | null = null;
  if (scanned.attachment) {
    tarball = { staged: await staging!, sha512: scanned.attachment.sha512, size: scanned.attachment.size, head: scanned.attachment.head };
  } else {
    // A body the scanner did not recognise the tarball in (unusual key order): decode it here.
    const atts = (scanned.doc as { _attachments?: Record<string, { data?: unknown }> } | null)?._attachments ?? {};
    const inline = Object.entries(atts).find(([k, a]) => k.endsWith('.tgz') && typeof a?.data === 'string' && a.data !== '');
    if (inline) {
      const buf = Buffer.from(inline[1].data as string, 'base64');
      inline[1].data = '';
      tarball = { staged: await app.blobs.stage(repo.blobStoreId, Readable.from([buf])), sha512: createHash('sha512').update(buf).digest('base64'), size: buf.length, head: buf.subarray(0, 512) };
    }
  }
  if (!tarball) return update(req, repo, name, scanned.doc);
  try {
    if (viaRev) throw new AppError('BAD_REQUEST', 'A tarball cannot be published through /-rev/; PUT /<name>');
    return await publish(req, repo, name, scanned.doc, tarball);
  } catch (e) {
    // Never after the commit: the staged key may then be the stored blob's own.
    if (!tarball.committed) await app.blobs.discard(tarball.staged);
    throw e;
  }
}

interface Tarball {
  staged: StagedBlob;
  sha512: string;
  size: number;
  /** The first decoded bytes (what the content type check reads). */
  head: Buffer;
  /** Set once the publish committed (the staged bytes are then the blob's, or settled away). */
  committed?: boolean;
}

async function publish(req: ContentRequest, repo: Repository, name: string, body: unknown, tarball: Tarball): Promise<number> {
  const { app } = req;
  const bad = invalidName(name, true);
  if (bad) throw new AppError('BAD_REQUEST', `Invalid package name "${name}": ${bad}`);
  let p: ReturnType<typeof parsePublish>;
  try {
    p = parsePublish(body, name);
  } catch (e) {
    inputError(e);
  }
  const { staged, sha512 } = tarball;
  if (tarball.size === 0) throw new AppError('BAD_REQUEST', `Tarball of ${name}@${p.version} is empty`);
  const refusal = tarballRefusal(repo.config, name, p.version, p.attachment.file, tarball.head);
  if (refusal) throw new AppError('BAD_REQUEST', refusal);
  if (p.attachment.length !== null && p.attachment.length !== tarball.size) {
    throw new AppError('BAD_REQUEST', `Tarball of ${name}@${p.version} is ${tarball.size} bytes but its attachment declares ${p.attachment.length}`);
  }
  const dist = p.attachment.dist;
  const wanted512 = sha512Of(dist.integrity);
  if (typeof dist.integrity === 'string' && wanted512.length === 0 && !dist.shasum) {
    throw new AppError('BAD_REQUEST', `dist.integrity of ${name}@${p.version} has no sha512 and there is no dist.shasum to check the tarball against`);
  }
  if (wanted512.length > 0 && !wanted512.includes(sha512)) {
    throw new AppError('BAD_REQUEST', `Tarball integrity mismatch for ${name}@${p.version}: dist.integrity is sha512-${wanted512[0]} but the tarball is sha512-${sha512}`);
  }
  if (dist.shasum !== undefined && (typeof dist.shasum !== 'string' || !/^[0-9a-f]{40}$/i.test(dist.shasum))) {
    throw new AppError('BAD_REQUEST', `dist.shasum of ${name}@${p.version} is not a sha1`);
  }
  if (typeof dist.shasum === 'string' && dist.shasum.toLowerCase() !== staged.sha1) {
    throw new AppError('BAD_REQUEST', `Tarball shasum mismatch for ${name}@${p.version}: dist.shasum is ${dist.shasum} but the tarball is ${staged.sha1}`);
  }
  const policy = repo.config.storage.writePolicy ?? 'ALLOW_ONCE';
  const refuse = (doc: Packument | null) => {
    if (doc?.versions[p.version] && policy !== 'ALLOW') {
      throw new AppError('WRITE_POLICY', `You cannot publish over the previously published versions: ${p.version}.`);
    }
  };
  const before = await current(repo, name);
  refuse(before.doc);
  if (before.doc?.versions[p.version]) await req.access.require('edit');
  if (!dist.shasum) dist.shasum = staged.sha1;
  if (!dist.integrity) dist.integrity = `sha512-${sha512}`;
  const at = new Date();
  try {
    await change(app, repo, name, (doc) => {
      refuse(doc);
      try {
        return {
          doc: applyPublish(doc, name, p, at),
          tarball: { staged, file: p.attachment.file, version: p.version, attributes: searchAttributes(p.manifest, req.principal?.anonymous ? null : (req.principal?.userId ?? null)) },
        };
      } catch (e) {
        inputError(e);
      }
    });
  } catch (e) {
    await app.blobs.discard(staged);
    throw e;
  }
  tarball.committed = true;
  await app.audit.record(
    { principal: req.principal, remoteAddress: req.ctx.ip },
    { domain: 'repository.component', type: 'created', context: `${name}@${p.version}`, attributes: { repository: repo.name, format: 'npm', name, version: p.version } },
  );
  return 200;
}

/** Deprecate / undeprecate, or unpublish of versions (the packument without them). */
async function update(req: ContentRequest, repo: Repository, name: string, body: unknown): Promise<number> {
  const { app } = req;
  const cur = await current(repo, name);
  if (!cur.doc) throw new AppError('NOT_FOUND', `Package ${name} not found in ${repo.name}`);
  let probe: { removed: string[] };
  try {
    probe = applyUpdate(cur.doc, body, new Date());
  } catch (e) {
    inputError(e);
  }
  if (probe.removed.length > 0) await req.access.require('delete');
  else await req.access.require('edit');
  await change(app, repo, name, (doc) => {
    if (!doc) throw new AppError('NOT_FOUND', `Package ${name} not found in ${repo.name}`);
    try {
      const { doc: next, removed } = applyUpdate(doc, body, new Date());
      const files = removed.map((v) => tarballBasename(doc.versions[v]?.dist?.tarball, name, v));
      // The last version gone: the package is gone.
      return { doc: Object.keys(next.versions).length === 0 ? null : next, removeFiles: files };
    } catch (e) {
      inputError(e);
    }
  });
  return 200;
}

/** `DELETE /<name>/-rev/<rev>`: the whole package. */
export async function unpublishPackage(req: ContentRequest, name: string): Promise<void> {
  const repo = await writeTarget(req);
  const cur = await current(repo, name);
  if (!cur.doc) throw new AppError('NOT_FOUND', `Package ${name} not found in ${repo.name}`);
  await change(req.app, repo, name, (doc) => {
    if (!doc) throw new AppError('NOT_FOUND', `Package ${name} not found in ${repo.name}`);
    return { doc: null, removeFiles: Object.entries(doc.versions).map(([v, m]) => tarballBasename(m?.dist?.tarball, name, v)) };
  });
  await req.app.audit.record(
    { principal: req.principal, remoteAddress: req.ctx.ip },
    { domain: 'repository.component', type: 'deleted', context: name, attributes: { repository: repo.name, format: 'npm', name } },
  );
}

/**
 * `DELETE /<name>/-/<file>/-rev/<rev>` (the last step of `npm unpublish pkg@ver`): the tarball
 * of a version no longer in the packument. Already gone (the packument update removed it): fine.
 */
export async function deleteTarball(req: ContentRequest, name: string, file: string): Promise<void> {
  const repo = await writeTarget(req);
  const cur = await current(repo, name);
  const version = versionOfFile(name, file);
  if (cur.doc && version && own(cur.doc.versions, version)) {
    throw new AppError('BAD_REQUEST', `${name}@${version} is still published; unpublish the version first`);
  }
  await repo.delete(tarballPath(name, file));
}

/** `PUT|DELETE /-/package/<name>/dist-tags/<tag>`. */
export async function changeDistTag(req: ContentRequest, name: string, tag: string, version: string | null): Promise<Record<string, string>> {
  const repo = await writeTarget(req);
  const doc = await change(req.app, repo, name, (d) => {
    if (!d) throw new AppError('NOT_FOUND', `Package ${name} not found in ${repo.name}`);
    try {
      return { doc: setDistTag(d, tag, version, new Date()) };
    } catch (e) {
      inputError(e);
    }
  });
  return doc?.['dist-tags'] ?? {};
}
