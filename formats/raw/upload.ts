import { badRequest } from '../../src/errors.js';
import type { UploadForm, UploadPlan } from '../../src/repository/format.js';
import { rawComponent, rawContentType } from './paths.js';

/** Path segments of a form value; traversal, backslashes, NUL and empty names are refused. */
function segments(value: string, field: string, allowEmpty: boolean): string[] {
  const bad = (why: string) => badRequest(`${field}: ${why}`, { field });
  if (/[\\\0]/.test(value)) throw bad('backslashes and NUL are not allowed');
  const parts = value.split('/');
  const out: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const s = parts[i];
    if (s === '.' || s === '..') throw bad(`'.' and '..' are not allowed`);
    if (s === '') {
      // A directory may be written `/a/b/`; a file name must name a file.
      if (allowEmpty) continue;
      throw bad(i === 0 ? 'must not be absolute' : 'empty path segment');
    }
    out.push(s);
  }
  return out;
}

/**
 * Nexus's raw upload: `raw.directory` plus `raw.assetN` files, each named by
 * `raw.assetN.filename`. Pure: the whole form is checked before anything is stored.
 */
export function planRawUpload(form: UploadForm): UploadPlan[] {
  const dir = segments(form.fields.get('raw.directory') ?? '', 'raw.directory', true);
  const out: UploadPlan[] = [];
  for (const field of form.files.keys()) {
    if (!/^raw\.asset\d*$/.test(field)) throw badRequest(`${field}: unexpected file field (expected raw.asset1, raw.asset2, …)`, { field });
    const nameField = `${field}.filename`;
    const filename = form.fields.get(nameField);
    if (!filename) throw badRequest(`${nameField}: is required`, { field: nameField });
    const path = [...dir, ...segments(filename, nameField, false)].join('/');
    if (path.length > 1024) throw badRequest(`${nameField}: the path is longer than 1024 characters`, { field: nameField });
    if (out.some((u) => u.path === path)) throw badRequest(`${nameField}: '${path}' is uploaded twice`, { field: nameField });
    out.push({ field, path, contentType: rawContentType(path), component: rawComponent(path) });
  }
  for (const f of form.fields.keys()) {
    const m = /^(raw\.asset\d*)\.filename$/.exec(f);
    if (m && !form.files.has(m[1])) throw badRequest(`${m[1]}: no file was sent for ${f}`, { field: m[1] });
  }
  if (out.length === 0) throw badRequest('raw.asset1: at least one file is required', { field: 'raw.asset1' });
  const n = (f: string) => Number(f.slice('raw.asset'.length) || 0);
  return out.sort((a, b) => n(a.field) - n(b.field));
}
