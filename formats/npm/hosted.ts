/**
 * Writes to an npm hosted repository (publish, deprecate, unpublish, dist-tags). The packument
 * is the stored source of truth (a metadata asset at `<name>`), tarballs are content assets at
 * `<name>/-/<file>` with a component (scope, name, version). Every change is one change of the
 * package through the core's unit of work (package-change.ts): write policy, one transaction,
 * retry while another writer changed the package first; nothing partial is ever visible.
 */
import { Readable } from 'node:stream';
import { AppError } from '../../src/errors.js';
import { readSmall, type StagedBlob } from '../../src/blob/blob-service.js';
import type { ContentRequest } from '../../src/repository/format.js';
import type { GroupRepository, Repository } from '../../src/repository/repository.js';
import { changePackage, currentPackument } from './package-change.js';
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

/** The hosted repository a write addressed to `req.repo` lands in (a group's writable member). */
export async function writeTarget(req: ContentRequest): Promise<Repository> {
  let repo = req.repo;
  if (repo.type === 'group') repo = await (repo as GroupRepository).writableMember();
  if (repo.type !== 'hosted' || repo.format !== req.repo.format) {
    throw new AppError('METHOD_NOT_ALLOWED', `Repository '${repo.name}' (${repo.type}) does not accept publishing`);
  }
  return repo;
}

/** A change of package `name` made by the request's principal (write policy, edit on overwrite, audit origin). */
function change(req: ContentRequest, repo: Repository, name: string, compute: Parameters<typeof changePackage>[3], adopt?: StagedBlob[]) {
  return changePackage(repo, name, { source: 'client', access: req.access, origin: { principal: req.principal, remoteAddress: req.ctx.ip }, adopt }, compute);
}

function inputError(e: unknown): never {
  if (e instanceof NpmInputError) throw new AppError('BAD_REQUEST', e.message);
  throw e;
}

/** The blob's sha512 (npm declares it: ingest computed it) as SRI's base64. */
function base64Of(hex: string | undefined): string {
  if (!hex) throw new Error('npm tarball staged without its sha512');
  return Buffer.from(hex, 'hex').toString('base64');
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
      staging = app.blobs.stage(repo.blobStoreId, a.stream, { digests: repo.format.digests, maxSize: MAX_TARBALL_BYTES });
      staging.catch((e: Error) => a.stream.destroy(e));
    });
  } catch (e) {
    if (staging)
      await (staging as Promise<StagedBlob>).then(
        (st) => app.blobs.discard(st),
        () => undefined,
      );
    throw e;
  }
  let tarball: Tarball | null = null;
  if (scanned.attachment) {
    const staged = await staging!;
    tarball = { staged, sha512: base64Of(staged.sha512), size: scanned.attachment.size, head: scanned.attachment.head };
  } else {
    // A body the scanner did not recognise the tarball in (unusual key order): decode it here.
    const atts = (scanned.doc as { _attachments?: Record<string, { data?: unknown }> } | null)?._attachments ?? {};
    const inline = Object.entries(atts).find(([k, a]) => k.endsWith('.tgz') && typeof a?.data === 'string' && a.data !== '');
    if (inline) {
      const buf = Buffer.from(inline[1].data as string, 'base64');
      inline[1].data = '';
      const staged = await app.blobs.stage(repo.blobStoreId, Readable.from([buf]), { digests: repo.format.digests });
      tarball = {
        staged,
        sha512: base64Of(staged.sha512),
        size: buf.length,
        head: buf.subarray(0, 512),
      };
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
  /** Set once the unit of work owns the staged bytes (it settles them with the commit or discards them). */
  committed?: boolean;
}

async function publish(req: ContentRequest, repo: Repository, name: string, body: unknown, tarball: Tarball): Promise<number> {
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
  if (!dist.shasum) dist.shasum = staged.sha1;
  if (!dist.integrity) dist.integrity = `sha512-${sha512}`;
  const at = new Date();
  const { scope, bare } = splitName(name);
  // From here the unit of work owns the staged tarball (settled with the commit, else discarded).
  tarball.committed = true;
  await change(
    req,
    repo,
    name,
    (cur, c) => {
      let next: Packument;
      try {
        next = applyPublish(cur.doc, name, p, at);
      } catch (e) {
        inputError(e);
      }
      c.put(tarballPath(name, p.attachment.file), staged, {
        contentType: OCTET,
        kind: 'content',
        component: {
          namespace: scope ?? '',
          name: bare,
          version: p.version,
          attributes: searchAttributes(p.manifest, req.principal?.anonymous ? null : (req.principal?.userId ?? null)),
        },
        attributes: { packageName: name, version: p.version },
        // Publishing a version the packument lists is an overwrite, whatever its file is called.
        overwrite: !!(cur.doc && own(cur.doc.versions, p.version)),
        refusal: `You cannot publish over the previously published versions: ${p.version}.`,
      });
      c.audit({ domain: 'repository.component', type: 'created', context: `${name}@${p.version}`, attributes: { name, version: p.version } });
      return next;
    },
    [staged],
  );
  return 200;
}

/** Deprecate / undeprecate, or unpublish of versions (the packument without them). */
async function update(req: ContentRequest, repo: Repository, name: string, body: unknown): Promise<number> {
  const cur = await currentPackument(repo, name);
  if (!cur.doc) throw new AppError('NOT_FOUND', `Package ${name} not found in ${repo.name}`);
  let probe: { removed: string[] };
  try {
    probe = applyUpdate(cur.doc, body, new Date());
  } catch (e) {
    inputError(e);
  }
  if (probe.removed.length > 0) await req.access.require('delete');
  else await req.access.require('edit');
  await change(req, repo, name, ({ doc }, c) => {
    if (!doc) throw new AppError('NOT_FOUND', `Package ${name} not found in ${repo.name}`);
    try {
      const { doc: next, removed } = applyUpdate(doc, body, new Date());
      for (const v of removed) c.deleteAsset(tarballPath(name, tarballBasename(doc.versions[v]?.dist?.tarball, name, v)));
      // The last version gone: the package is gone.
      return Object.keys(next.versions).length === 0 ? null : next;
    } catch (e) {
      inputError(e);
    }
  });
  return 200;
}

/** `DELETE /<name>/-rev/<rev>`: the whole package. */
export async function unpublishPackage(req: ContentRequest, name: string): Promise<void> {
  const repo = await writeTarget(req);
  await change(req, repo, name, ({ doc }, c) => {
    if (!doc) throw new AppError('NOT_FOUND', `Package ${name} not found in ${repo.name}`);
    for (const [v, m] of Object.entries(doc.versions)) c.deleteAsset(tarballPath(name, tarballBasename(m?.dist?.tarball, name, v)));
    c.audit({ domain: 'repository.component', type: 'deleted', context: name, attributes: { name } });
    return null;
  });
}

/**
 * `DELETE /<name>/-/<file>/-rev/<rev>` (the last step of `npm unpublish pkg@ver`): the tarball
 * of a version no longer in the packument. Already gone (the packument update removed it): fine.
 */
export async function deleteTarball(req: ContentRequest, name: string, file: string): Promise<void> {
  const repo = await writeTarget(req);
  const cur = await currentPackument(repo, name);
  const version = versionOfFile(name, file);
  if (cur.doc && version && own(cur.doc.versions, version)) {
    throw new AppError('BAD_REQUEST', `${name}@${version} is still published; unpublish the version first`);
  }
  await repo.delete(tarballPath(name, file), { access: req.access, origin: { principal: req.principal, remoteAddress: req.ctx.ip } });
}

/** `PUT|DELETE /-/package/<name>/dist-tags/<tag>`. */
export async function changeDistTag(req: ContentRequest, name: string, tag: string, version: string | null): Promise<Record<string, string>> {
  const repo = await writeTarget(req);
  const { value: doc } = await change(req, repo, name, ({ doc: d }) => {
    if (!d) throw new AppError('NOT_FOUND', `Package ${name} not found in ${repo.name}`);
    try {
      return setDistTag(d, tag, version, new Date());
    } catch (e) {
      inputError(e);
    }
  });
  return doc?.['dist-tags'] ?? {};
}
