/**
 * PyPI on the core's proxy and group: which paths are pages (revalidated after the metadata max
 * age), how they are asked for upstream (JSON preferred, HTML accepted: one cached document per
 * page, since PEP 691's serializations carry the same data and JSON a superset; pages.ts renders
 * each representation from it under its own ETag and `Vary: Accept`), what a fetched file must
 * be (its page's sha256), the group merge of pages and lists, and per-project pinning of group
 * members against dependency confusion.
 */
import type { Readable } from 'node:stream';
import { z } from 'zod';
import { AppError } from '../../src/errors.js';
import { readSmall } from '../../src/blob/blob-service.js';
import type { ComponentInput } from '../../src/content/types.js';
import type { ExpectedContent, MergeInput } from '../../src/repository/format.js';
import { joinRemote } from '../../src/proxy/upstream-url.js';
import type { Repository } from '../../src/repository/repository.js';
import { fileOfPath, fileUrl, LIST_PATH, pagePath, projectOfPage } from './layout.js';
import { normalizeName, parseDistFilename } from './names.js';
import { baseOf, MAX_PAGE_BYTES, pageProblem, readList, readPage } from './pages.js';
import { HTML_TYPE, JSON_TYPE, renderListJson, renderProjectJson, versionsOf, type ProjectFile } from './simple-page.js';

const PROJECT_KEY = /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?|[a-z0-9][a-z0-9-]*\*)$/;

/**
 * The `pypi` section. Proxies: Nexus's `removeQuarantined` (accepted; nothing to do without a
 * firewall). Groups: `pinnedProjects`, project names (normalised) or prefixes ending in `*`
 * mapped to the members that alone serve them, e.g. `{ "corp-*": ["pypi-hosted"], "internal-tool":
 * ["pypi-hosted"] }`: a pinned project is never looked up on other members (no upstream request
 * reveals it, no public project of the same name shadows it).
 */
export const pypiSection = z.object({
  removeQuarantined: z.boolean().optional(),
  pinnedProjects: z
    .record(z.string().regex(PROJECT_KEY, 'keys are normalised project names, or prefixes ending in "*" (e.g. "corp-*")'), z.array(z.string().min(1)).min(1))
    .optional()
    .describe(
      'Groups: project names (normalised, PEP 503) or prefixes ending in "*" mapped to the members that alone serve them, e.g. {"corp-*": ["pypi-hosted"]}; ' +
        'a pinned project is never looked up on other members (dependency confusion). The longest matching prefix decides.',
    ),
});

export function isMetadata(path: string): boolean {
  return path === LIST_PATH || projectOfPage(path) !== null;
}

/** Absolute upstream paths are file URLs from a cached page (another host, as files.pythonhosted.org). */
export function upstreamUrl(remoteUrl: string, path: string): string {
  return /^https?:\/\//i.test(path) ? path : joinRemote(remoteUrl, path);
}

export function upstreamHeaders(path: string): Record<string, string> {
  return isMetadata(path) || /^https?:\/\/.*\/simple\//i.test(path) ? { Accept: `${JSON_TYPE}, ${HTML_TYPE};q=0.2, text/html;q=0.1` } : {};
}

/** A component for a file (project, version from its name); none for pages. */
export function componentOf(path: string): ComponentInput | null {
  const f = fileOfPath(path);
  if (!f) return null;
  const d = parseDistFilename(f.filename);
  return d ? { name: f.project, version: d.version } : null;
}

export function proxyAsset(path: string): { contentType?: string; component?: ComponentInput | null } {
  if (isMetadata(path)) return { component: null };
  const f = fileOfPath(path);
  return { contentType: f?.metadata ? 'text/plain; charset=utf-8' : 'application/octet-stream', component: componentOf(path) };
}

export async function validateMetadata(path: string, open: () => Promise<Readable>): Promise<string | null> {
  if (!isMetadata(path)) return null;
  let text: string;
  try {
    text = (await readSmall(await open(), MAX_PAGE_BYTES)).toString('utf8');
  } catch (e) {
    if (e instanceof AppError && e.code === 'PAYLOAD_TOO_LARGE') return `page larger than ${MAX_PAGE_BYTES} bytes`;
    throw e;
  }
  return pageProblem(path, text);
}

/** What a file fetched upstream must be: the sha256 its cached page states (no fetch of the page here). */
export async function proxyExpected(path: string, repo: Repository): Promise<ExpectedContent | null> {
  const f = fileOfPath(path);
  if (!f) return null;
  const page = await repo.local(pagePath(f.project));
  if (!page) return null;
  const file = (await readPage(page, f.project, baseOf(repo, pagePath(f.project)))).files.find((x) => x.filename === f.filename);
  const sha256 = f.metadata ? (file?.coreMetadata === true ? undefined : file?.coreMetadata?.sha256) : file?.hashes.sha256;
  return sha256 ? { sha256 } : null;
}

/** Members' pages merged (first member wins by file name, versions unioned), or their lists unioned. */
export async function mergeMetadata(path: string, parts: MergeInput[]): Promise<{ body: Buffer; contentType: string } | null> {
  if (path === LIST_PATH) {
    const names = new Set<string>();
    for (const p of parts) for (const n of await readList(p.content)) names.add(normalizeName(n));
    return { body: Buffer.from(renderListJson([...names].sort())), contentType: JSON_TYPE };
  }
  const project = projectOfPage(path);
  if (!project) return null;
  const files = new Map<string, ProjectFile>();
  const versions: string[] = [];
  for (const p of parts) {
    const page = await readPage(p.content, project, baseOf(p.member, path));
    versions.push(...page.versions);
    for (const f of page.files) if (!files.has(f.filename)) files.set(f.filename, { ...f, url: fileUrl(project, f.filename) });
  }
  const merged = [...files.values()];
  return { body: Buffer.from(renderProjectJson({ name: project, files: merged, versions: versionsOf(merged, versions) })), contentType: JSON_TYPE };
}

/** The project a path belongs to (page, file, `.metadata`), or null (the list). */
function projectOf(path: string): string | null {
  return projectOfPage(path) ?? fileOfPath(path)?.project ?? null;
}

/** A pinned project is looked up in its pinned members only (in the group's order); others in all. */
export function groupMembers(path: string, members: Repository[], group: Repository): Repository[] {
  const pinned = group.section<{ pinnedProjects?: Record<string, string[]> }>('pypi')?.pinnedProjects;
  const project = pinned && projectOf(path);
  if (!pinned || !project) return members;
  let names = Object.hasOwn(pinned, project) ? pinned[project] : undefined;
  if (!names) {
    // The longest matching prefix decides.
    const prefixes = Object.keys(pinned)
      .filter((k) => k.endsWith('*') && project.startsWith(k.slice(0, -1)))
      .sort((a, b) => b.length - a.length);
    if (prefixes.length) names = pinned[prefixes[0]];
  }
  if (!names) return members;
  return members.filter((m) => names.includes(m.name));
}
