/**
 * Nexus's yum component upload (`POST /service/rest/v1/components`): `yum.asset` with
 * `yum.asset.filename` and an optional `yum.directory`. The plan is pure; `inspectYumUpload`
 * then applies the deploy policy and parses the spooled RPM before anything is stored.
 */
import { pipeline } from 'node:stream/promises';
import { Writable, type Readable } from 'node:stream';
import { badRequest } from '../../src/errors.js';
import type { UploadForm, UploadPlan } from '../../src/repository/format.js';
import type { Repository } from '../../src/repository/repository.js';
import { checkDeployPath, isRpm, yumContentType } from './paths.js';
import { yumSectionOf } from './repodata-service.js';
import { inspected, rpmBadRequest, rpmComponent } from './hosted.js';
import { RpmInspector } from './rpm-header.js';

function segments(value: string, field: string, allowEmpty: boolean): string[] {
  const bad = (why: string) => badRequest(`${field}: ${why}`, { field });
  if (/[\\\0]/.test(value)) throw bad('backslashes and NUL are not allowed');
  const out: string[] = [];
  const parts = value.split('/');
  for (let i = 0; i < parts.length; i++) {
    const s = parts[i];
    if (s === '.' || s === '..') throw bad(`'.' and '..' are not allowed`);
    if (s === '') {
      if (allowEmpty) continue;
      throw bad(i === 0 ? 'must not be absolute' : 'empty path segment');
    }
    out.push(s);
  }
  return out;
}

export function planYumUpload(form: UploadForm): UploadPlan[] {
  for (const field of form.files.keys()) if (field !== 'yum.asset') throw badRequest(`${field}: unexpected file field (expected yum.asset)`, { field });
  if (!form.files.has('yum.asset')) throw badRequest('yum.asset: an RPM file is required', { field: 'yum.asset' });
  const filename = form.fields.get('yum.asset.filename');
  if (!filename) throw badRequest('yum.asset.filename: is required', { field: 'yum.asset.filename' });
  const dir = segments(form.fields.get('yum.directory') ?? '', 'yum.directory', true);
  const name = segments(filename, 'yum.asset.filename', false);
  if (name.length !== 1) throw badRequest('yum.asset.filename: a file name, without directories (use yum.directory)', { field: 'yum.asset.filename' });
  const path = [...dir, ...name].join('/');
  if (path.length > 1024) throw badRequest('yum.asset.filename: the path is longer than 1024 characters', { field: 'yum.asset.filename' });
  return [{ field: 'yum.asset', path, contentType: yumContentType(path) }];
}

/** The deploy policy, then the RPM's metadata and component for its asset (a 400 for a bad RPM). */
export async function inspectYumUpload(repo: Repository, plan: UploadPlan, open: () => Readable): Promise<Partial<UploadPlan>> {
  checkDeployPath(plan.path, yumSectionOf(repo));
  if (!isRpm(plan.path)) return {};
  const inspector = new RpmInspector();
  try {
    await pipeline(open(), inspector, new Writable({ write: (_c, _e, cb) => cb() }));
  } catch (e) {
    throw rpmBadRequest(inspector.failure ?? e, plan.path);
  }
  const pkg = await inspected(inspector, plan.path);
  return { component: rpmComponent(pkg), attributes: { rpm: pkg } };
}
