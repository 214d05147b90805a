import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import type Koa from 'koa';
import busboy from 'busboy';
import type { Stowage } from '../stowage.js';
import { AppError, badRequest } from '../errors.js';
import { auditOrigin, requireContent } from '../http/auth.js';
import { GroupRepository } from '../repository/repository.js';
import { checkWritePolicy } from '../repository/unit-of-work.js';
import type { AccessCheck } from '../repository/types.js';
import type { UploadPlan } from '../repository/format.js';
import { decodeRepositoryPath } from '../http/paths.js';

/** A file part, spooled to disk (never held in memory) until the whole form has been read. */
interface SpooledFile {
  file: string;
  size: number;
  open: () => Readable;
}

interface Form {
  fields: Map<string, string>;
  files: Map<string, SpooledFile>;
}

const LIMITS = { fields: 1000, fieldSize: 64 * 1024, fieldNameSize: 200, files: 1000, parts: 2000 };

/** Spool files older than this were left by a process that died mid-upload. */
const STALE_MS = 24 * 3600 * 1000;
let sweptOnce = false;

/** Creates the spool directory; the first time in a process, removes what a crash left there. */
async function spoolDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  if (sweptOnce) return;
  sweptOnce = true;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const file = path.join(dir, name);
    const s = await stat(file).catch(() => null);
    if (s && Date.now() - s.mtimeMs > STALE_MS) await rm(file, { force: true });
  }
}

/**
 * Reads a multipart form: text fields into memory (small, capped), each file part streamed into
 * its own temp file. Nexus clients send `<format>.asset1` before `<format>.asset1.filename`, so where a
 * file goes is only known once the form has ended; spooling keeps every upload all-or-nothing.
 */
async function receiveForm(ctx: Koa.Context, dir: string, spooled: string[]): Promise<Form> {
  if (!/^multipart\/form-data\b/i.test(ctx.get('Content-Type'))) {
    throw new AppError('UNSUPPORTED', `Expected multipart/form-data, got ${ctx.get('Content-Type') || 'no Content-Type'}`);
  }
  await spoolDir(dir);
  const form: Form = { fields: new Map(), files: new Map() };
  const writes: Promise<void>[] = [];
  let problem: AppError | undefined;
  const fail = (e: AppError) => (problem ??= e);
  let bb: busboy.Busboy;
  try {
    bb = busboy({ headers: ctx.req.headers, limits: LIMITS });
  } catch (e) {
    throw badRequest(`Malformed multipart request: ${(e as Error).message}`);
  }
  bb.on('field', (name, value, info) => {
    if (info.nameTruncated || info.valueTruncated) fail(badRequest(`${name}: field is too long`, { field: name }));
    else if (form.fields.has(name)) fail(badRequest(`${name}: given more than once`, { field: name }));
    else form.fields.set(name, value);
  });
  bb.on('file', (name, stream) => {
    if (form.files.has(name) || problem) {
      if (!problem) fail(badRequest(`${name}: given more than once`, { field: name }));
      stream.resume();
      return;
    }
    const file = path.join(dir, randomBytes(16).toString('hex'));
    spooled.push(file);
    const entry: SpooledFile = { file, size: 0, open: () => createReadStream(file) };
    form.files.set(name, entry);
    const out = createWriteStream(file);
    writes.push(
      pipeline(stream, out).then(
        () => void (entry.size = out.bytesWritten),
        (e: unknown) => void fail(badRequest(`${name}: the file was not received completely (${(e as Error).message})`, { field: name })),
      ),
    );
  });
  bb.on('partsLimit', () => fail(badRequest(`Too many parts (at most ${LIMITS.parts})`)));
  bb.on('filesLimit', () => fail(badRequest(`Too many files (at most ${LIMITS.files})`)));
  bb.on('fieldsLimit', () => fail(badRequest(`Too many fields (at most ${LIMITS.fields})`)));
  try {
    await Promise.all([pipeline(ctx.req, bb), once(bb, 'close')]);
  } catch (e) {
    if (e instanceof AppError) throw e;
    throw badRequest(`Malformed multipart request: ${(e as Error).message}`);
  } finally {
    await Promise.all(writes);
  }
  if (problem) throw problem;
  return form;
}

/**
 * `POST /components?repository=…`: a Nexus multipart component upload, all files or none: one
 * change of the target repository (write policy and the edit permission on an overwrite checked
 * before anything is stored, each file hashed once while it is staged).
 */
export async function uploadComponent(app: Stowage, ctx: Koa.Context, repositoryName: string): Promise<void> {
  const repo = await app.repositories.require(repositoryName);
  const perm = { format: repo.format.name, repository: repo.name };
  const principal = await requireContent(app, ctx, { ...perm, action: 'add' });
  if (!repo.online) throw new AppError('OFFLINE', `Repository '${repo.name}' is offline`);
  const access: AccessCheck = {
    require: async (action) => void (await requireContent(app, ctx, { ...perm, action })),
    uploader: { userId: principal.userId, ip: ctx.ip },
  };
  const spooled: string[] = [];
  try {
    const plan = repo.format.planUpload;
    if (!plan) throw badRequest(`repository: ${repo.format.name} repositories do not accept component uploads`, { field: 'repository' });
    const form = await receiveForm(ctx, path.join(app.config.dataDir, 'tmp', 'uploads'), spooled);
    const target = repo instanceof GroupRepository ? await repo.writableMember() : repo;
    if (target.type !== 'hosted') throw new AppError('METHOD_NOT_ALLOWED', `Repository '${target.name}' (${target.type}) does not allow uploads`);
    const uploads = await plan.call(repo.format, form, target);
    // Defence in depth: whatever the format planned must be a valid repository path.
    for (const u of uploads) decodeRepositoryPath(encodeURI(u.path));
    await checkWritePolicy(app, target, 'upload', { puts: uploads }, access);
    const inspect = target.format.inspectUpload;
    const open = (u: UploadPlan) => (u.content ? Readable.from([u.content]) : createReadStream(form.files.get(u.field)!.file));
    if (inspect) for (const u of uploads) Object.assign(u, await inspect.call(target.format, target, u, () => open(u)));
    await target.change({ source: 'upload', access, origin: auditOrigin(ctx) }, async (change) => {
      for (const u of uploads) {
        const size = u.content ? u.content.length : form.files.get(u.field)!.size;
        const opts = { contentType: u.contentType, component: u.component, attributes: u.attributes, expectedSize: size };
        change.put(u.path, await target.stageFor(change, u.path, open(u), opts), opts);
      }
    });
  } finally {
    await Promise.all(spooled.map((f) => rm(f, { force: true })));
  }
}
