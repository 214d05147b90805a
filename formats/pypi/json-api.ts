/**
 * Warehouse's JSON API (`/pypi/<project>/json`, `/pypi/<project>/<version>/json`), which tools
 * such as Renovate read, built from the repository's project page (any repository type); a
 * hosted repository adds what its uploads recorded (summary, requirements).
 */
import { AppError } from '../../src/errors.js';
import type { RouteRequest } from '../../src/repository/format.js';
import type { FileAttributes } from './layout.js';
import { fileUrl } from './layout.js';
import { normalizeName, parseDistFilename, sameVersion } from './names.js';
import { projectPage } from './pages.js';
import { compareVersions, isPrerelease } from './pep440.js';
import type { ProjectFile } from './simple-page.js';

/** A file's digests besides the page's sha256, as a hosted upload recorded them. */
type Extra = { md5?: string | null; blake2b256?: string | null };

function fileJson(f: ProjectFile, url: string, extra: Extra = {}): Record<string, unknown> {
  const d = parseDistFilename(f.filename);
  const md5 = f.hashes.md5 ?? extra.md5 ?? null;
  const t = f.uploadTime ?? null;
  return {
    filename: f.filename,
    url,
    digests: { sha256: f.hashes.sha256 ?? null, md5, blake2b_256: f.hashes.blake2b_256 ?? extra.blake2b256 ?? null },
    md5_digest: md5,
    size: f.size ?? null,
    packagetype: d?.kind ?? 'unknown',
    python_version: d?.kind === 'bdist_wheel' ? d.tags!.python : 'source',
    requires_python: f.requiresPython ?? null,
    upload_time: t ? t.replace(/\.\d+Z$/, '') : null,
    upload_time_iso_8601: t,
    yanked: !!f.yanked,
    yanked_reason: typeof f.yanked === 'string' ? f.yanked : null,
    has_sig: false,
  };
}

export async function getProjectJson(req: RouteRequest): Promise<void> {
  const project = normalizeName(req.params.project);
  const page = await projectPage(req.repo, project, undefined, req.app);
  if (!page || page.files.length === 0) throw new AppError('NOT_FOUND', `Project not found: ${project}`);
  const base = `${req.app.baseUrl(req.ctx)}/repository/${encodeURIComponent(req.repo.name)}/simple/${encodeURIComponent(project)}/`;
  // A hosted repository's uploads: md5, BLAKE2b-256, summary and requirements (the page has sha256 only).
  const uploads = new Map<string, { md5: string | null; blake2b256: string | null; pypi?: FileAttributes }>();
  if (req.repo.type === 'hosted')
    for (const a of await req.app.content.findAssets(req.repo.id, { pathPrefix: `packages/${project}/` })) {
      const p = (a.attributes as { pypi?: FileAttributes }).pypi;
      if (p?.filename) uploads.set(p.filename, { md5: a.md5, blake2b256: a.blake2b256 ?? p.blake2b256 ?? null, pypi: p });
    }
  const releases = new Map<string, Record<string, unknown>[]>();
  const filesOf = new Map<string, ProjectFile[]>();
  for (const v of page.versions) releases.set(v, []);
  for (const f of page.files) {
    const v = parseDistFilename(f.filename)?.version;
    if (!v) continue;
    const key = page.versions.find((x) => sameVersion(x, v)) ?? v;
    releases.set(key, [
      ...(releases.get(key) ?? []),
      fileJson(f, new URL(fileUrl(project, f.filename), base).href, { md5: uploads.get(f.filename)?.md5, blake2b256: uploads.get(f.filename)?.blake2b256 }),
    ]);
    filesOf.set(key, [...(filesOf.get(key) ?? []), f]);
  }
  const versions = [...releases.keys()].sort(compareVersions);
  let version: string | undefined;
  if (req.params.version) {
    version = versions.find((v) => sameVersion(v, req.params.version));
    if (!version) throw new AppError('NOT_FOUND', `Version not found: ${project} ${req.params.version}`);
  } else {
    // As Warehouse: the highest release not wholly yanked, prereleases only when nothing else.
    const live = versions.filter((v) => (filesOf.get(v) ?? []).some((f) => !f.yanked));
    version = [...live].reverse().find((v) => !isPrerelease(v)) ?? live.at(-1) ?? versions.at(-1);
  }
  const files = filesOf.get(version!) ?? [];
  // What a hosted upload recorded (summary, requirements) for this version.
  const recorded = files.map((f) => uploads.get(f.filename)?.pypi).find((p) => p);
  const body = {
    info: {
      name: recorded?.project ?? page.name,
      version,
      summary: recorded?.summary ?? null,
      requires_python: files.find((f) => f.requiresPython)?.requiresPython ?? null,
      requires_dist: recorded?.requiresDist?.length ? recorded.requiresDist : null,
      yanked: files.length > 0 && files.every((f) => f.yanked),
      yanked_reason: files.map((f) => (typeof f.yanked === 'string' ? f.yanked : null)).find((r) => r) ?? null,
      package_url: `${base.replace(/\/simple\//, '/pypi/')}`,
      project_url: `${base.replace(/\/simple\//, '/pypi/')}`,
    },
    last_serial: 0,
    urls: releases.get(version!) ?? [],
    vulnerabilities: [],
    ...(req.params.version ? {} : { releases: Object.fromEntries(versions.map((v) => [v, releases.get(v)])) }),
  };
  req.ctx.status = 200;
  req.ctx.set('Content-Type', 'application/json');
  req.ctx.body = JSON.stringify(body);
}
