/**
 * `twine upload` (the legacy `file_upload` form, protocols.md §3.2) into a hosted repository or
 * a group's writable member. The form's fields come before the file part, so everything is
 * checked (name, version, file name, write policy) before a byte of the file is read; the file
 * streams into the blob store while it is hashed; a wheel's METADATA is then read from the
 * staged blob by ranged reads; one change stores the file and its `.metadata`. The maintenance
 * hook then rebuilds the project's page. Anything refused leaves nothing behind.
 */
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { once } from 'node:events';
import busboy from 'busboy';
import { AppError, badRequest } from '../../src/errors.js';
import type { BlobRow, StagedBlob } from '../../src/blob/blob-service.js';
import type { RouteRequest } from '../../src/repository/format.js';
import type { GroupRepository, Repository } from '../../src/repository/repository.js';
import { checkWritePolicy } from '../../src/repository/unit-of-work.js';
import { parseCoreMetadata } from './core-metadata.js';
import { filePath, metadataPath, uploadTime, type FileAttributes } from './layout.js';
import { filenameMismatch, isValidName, normalizeName, sameVersion } from './names.js';
import { parseVersion } from './pep440.js';
import { readWheelMetadata, WheelError } from './wheel.js';

const OCTET = 'application/octet-stream';
/** Largest distribution file accepted (PyPI's default limit is 100 MB; large ML wheels need more). */
const MAX_FILE_BYTES = 4 * 1024 * 1024 * 1024;
/** Text fields: the long description (README) is the largest. */
const LIMITS = { fields: 500, fieldSize: 8 * 1024 * 1024, fieldNameSize: 200, files: 3, parts: 600 };

interface Received {
  fields: Map<string, string[]>;
  filename: string;
  staged: StagedBlob;
}

/** The hosted repository an upload addressed to `req.repo` lands in. */
async function uploadTarget(req: RouteRequest): Promise<Repository> {
  let repo = req.repo;
  if (repo.type === 'group') repo = await (repo as GroupRepository).writableMember();
  if (repo.type !== 'hosted' || repo.format !== req.repo.format) throw new AppError('METHOD_NOT_ALLOWED', `Repository '${repo.name}' (${repo.type}) does not accept uploads`);
  return repo;
}

const one = (fields: Map<string, string[]>, key: string) => fields.get(key)?.[0]?.trim() ?? '';

/** The form's checks that need no file: a 400 naming what is wrong. */
function checkForm(fields: Map<string, string[]>, filename: string): void {
  const action = one(fields, ':action');
  if (action !== 'file_upload') throw badRequest(action ? `Unsupported :action '${action}' (only file_upload)` : 'Missing :action (expected file_upload)');
  const name = one(fields, 'name');
  const version = one(fields, 'version');
  if (!isValidName(name)) throw badRequest(name ? `Invalid project name '${name}'` : 'Missing project name');
  if (!parseVersion(version)) throw badRequest(version ? `Invalid version '${version}' (not PEP 440)` : 'Missing version');
  const filetype = one(fields, 'filetype');
  if (filetype !== 'sdist' && filetype !== 'bdist_wheel') throw badRequest(`Unsupported filetype '${filetype}' (sdist or bdist_wheel)`);
  const wrong = filenameMismatch(filename, name, version, filetype);
  if (wrong) throw badRequest(wrong);
  for (const [field, len] of [
    ['sha256_digest', 64],
    ['md5_digest', 32],
    ['blake2_256_digest', 64],
  ] as const) {
    const v = one(fields, field);
    if (v && !new RegExp(`^[0-9a-fA-F]{${len}}$`).test(v)) throw badRequest(`Invalid ${field} '${v}'`);
  }
}

/** Reads the form; the file part is staged (all checks done first) while it arrives. */
async function receive(req: RouteRequest, target: Repository): Promise<Received> {
  const { ctx, app } = req;
  if (!/^multipart\/form-data\b/i.test(ctx.get('Content-Type'))) throw new AppError('UNSUPPORTED', 'Expected a multipart/form-data upload (twine)');
  let bb: busboy.Busboy;
  try {
    // The file name as sent: one with a path in it is refused, not silently cut to its last segment.
    bb = busboy({ headers: ctx.req.headers, limits: LIMITS, preservePath: true });
  } catch (e) {
    throw badRequest(`Malformed multipart request: ${(e as Error).message}`);
  }
  const fields = new Map<string, string[]>();
  let problem: unknown;
  const fail = (e: unknown) => (problem ??= e);
  let filename = '';
  let staging: Promise<StagedBlob> | null = null;
  bb.on('field', (name, value, info) => {
    if (info.valueTruncated) fail(badRequest(`${name}: field is too long`));
    else fields.set(name, [...(fields.get(name) ?? []), value]);
  });
  bb.on('file', (name, stream: Readable, info) => {
    if (name !== 'content' || staging || problem) {
      if (name === 'content' && staging) fail(badRequest('content: given more than once'));
      stream.resume();
      return;
    }
    filename = info.filename ?? '';
    staging = (async () => {
      try {
        checkForm(fields, filename);
        const project = normalizeName(one(fields, 'name'));
        const path = filePath(project, filename);
        // Refused before the body is read (twine --skip-existing recognises "already exist").
        await checkWritePolicy(app, target, 'client', { puts: [{ path, kind: 'content', refusal: duplicate(filename, target) }] }, req.access);
        // Ingest computes the format's digests (sha256, md5, BLAKE2b-256) in one pass and checks
        // every one the form states.
        const expected = {
          sha256: one(fields, 'sha256_digest') || undefined,
          md5: one(fields, 'md5_digest') || undefined,
          blake2b256: one(fields, 'blake2_256_digest') || undefined,
        };
        return await app.blobs.stage(target.blobStoreId, stream, { expected, maxSize: MAX_FILE_BYTES, digests: target.format.digests });
      } catch (e) {
        stream.resume();
        throw e;
      }
    })();
    staging.catch(fail);
  });
  bb.on('partsLimit', () => fail(badRequest(`Too many parts (at most ${LIMITS.parts})`)));
  bb.on('fieldsLimit', () => fail(badRequest(`Too many fields (at most ${LIMITS.fields})`)));
  try {
    await Promise.all([pipeline(ctx.req, bb), once(bb, 'close')]);
  } catch (e) {
    fail(badRequest(`Malformed multipart request: ${(e as Error).message}`));
  }
  const staged = staging ? await (staging as Promise<StagedBlob>).catch(() => null) : null;
  if (problem) {
    if (staged) await app.blobs.discard(staged);
    throw problem;
  }
  if (!staged) throw badRequest('Missing file part "content"');
  return { fields, filename, staged };
}

function duplicate(filename: string, repo: Repository): string {
  return `File already exists: ${filename} (repository ${repo.name} does not allow updating assets)`;
}

/** The staged bytes, opened by range (before the change commits them). */
function stagedOpener(req: RouteRequest, staged: StagedBlob) {
  const blob = { store_id: staged.storeId, storage_key: staged.storageKey } as BlobRow;
  return (start: number, end: number) => req.app.blobs.open(blob, { start, end });
}

export async function upload(req: RouteRequest): Promise<void> {
  const target = await uploadTarget(req);
  const { fields, filename, staged } = await receive(req, target);
  let adopted = false;
  try {
    const name = one(fields, 'name');
    const version = one(fields, 'version');
    const filetype = one(fields, 'filetype');
    const project = normalizeName(name);
    let metadata: Buffer | null = null;
    let requiresPython = one(fields, 'requires_python') || null;
    let summary = one(fields, 'summary') || null;
    let requiresDist = fields.get('requires_dist') ?? [];
    if (filetype === 'bdist_wheel') {
      const [distName, distVersion] = filename.split('-');
      try {
        metadata = await readWheelMetadata(stagedOpener(req, staged), staged.size, distName, distVersion);
      } catch (e) {
        if (e instanceof WheelError) throw badRequest(`Invalid wheel '${filename}': ${e.message}`);
        throw e;
      }
      const m = parseCoreMetadata(metadata.toString('utf8'));
      if (!m.name || normalizeName(m.name) !== project) throw badRequest(`Invalid wheel '${filename}': its METADATA names project '${m.name ?? ''}', not '${name}'`);
      if (!m.version || !sameVersion(m.version, version)) throw badRequest(`Invalid wheel '${filename}': its METADATA has version '${m.version ?? ''}', not '${version}'`);
      requiresPython = m.requiresPython ?? requiresPython;
      summary = m.summary ?? summary;
      requiresDist = m.requiresDist;
    }
    const path = filePath(project, filename);
    adopted = true;
    await target.change({ source: 'client', access: req.access, origin: { principal: req.principal, remoteAddress: req.ctx.ip }, adopt: [staged], key: project }, async (c) => {
      const component = { name: project, version };
      const meta = metadata ? await c.stageBytes(metadata) : null;
      const attributes: FileAttributes = {
        project: name,
        version,
        filename,
        filetype,
        requiresPython,
        blake2b256: staged.blake2b256 ?? null,
        uploadTime: uploadTime(new Date()),
        metadataSha256: meta?.sha256 ?? null,
        yanked: false,
        summary,
        requiresDist,
      };
      c.put(path, staged, { contentType: OCTET, kind: 'content', component, attributes: { pypi: attributes }, refusal: duplicate(filename, target) });
      if (meta)
        c.put(metadataPath(project, filename), meta, { contentType: 'text/plain; charset=utf-8', kind: 'content', component, attributes: { pypi: { metadataOf: filename } } });
      c.audit({ domain: 'repository.asset', type: 'created', context: path, attributes: { path, project, version } });
    });
  } catch (e) {
    if (!adopted) await req.app.blobs.discard(staged);
    throw e;
  }
  req.ctx.status = 200;
  req.ctx.set('Content-Type', 'text/plain; charset=utf-8');
  req.ctx.body = 'OK\n';
}
