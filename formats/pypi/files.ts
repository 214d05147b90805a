/**
 * Distribution files and their PEP 658 `.metadata`, for every repository type: hosted serves
 * what it stores; a proxy finds the file's upstream URL (often on another host, as pypi.org's
 * files.pythonhosted.org) on its cached page and fetches it once, verified against the page's
 * sha256; a group asks its members in order (the first that has the file wins, as on its page).
 */
import { createHash } from 'node:crypto';
import { AppError } from '../../src/errors.js';
import { sendContent } from '../../src/http/send-content.js';
import type { RouteRequest } from '../../src/repository/format.js';
import type { ProxyRepository } from '../../src/repository/proxy-repository.js';
import type { GroupRepository, Repository } from '../../src/repository/repository.js';
import type { Content } from '../../src/repository/types.js';
import { filePath, metadataPath } from './layout.js';
import { projectPage } from './pages.js';
import { componentOf } from './proxy.js';
import { readWheelMetadata, WheelError } from './wheel.js';

/** `repo`'s copy of a file (or of its `.metadata`), or null. */
export async function findFile(repo: Repository, project: string, filename: string, metadata: boolean, trail?: string[]): Promise<Content | null> {
  const path = metadata ? metadataPath(project, filename) : filePath(project, filename);
  if (repo.type === 'group') {
    const [hit] = await (repo as GroupRepository).walk(path, (m, t) => findFile(m, project, filename, metadata, t), { first: true, trail });
    return hit?.value ?? null;
  }
  if (repo.type !== 'proxy') return repo.get(path);
  const proxy = repo as ProxyRepository;
  // Files never change upstream: a cached copy needs no page to be served.
  const cached = await proxy.local(path);
  if (cached && proxy.isFresh(cached.asset, path)) return cached;
  const page = await projectPage(proxy, project, trail);
  const f = page?.files.find((x) => x.filename === filename);
  if (!f) return cached;
  if (!metadata) return proxy.get(path, { upstreamPath: f.url });
  // Only what upstream advertised is asked for (pip derives `.metadata` URLs from the page it got).
  if (!f.coreMetadata) return null;
  const got = await proxy.get(path, { upstreamPath: `${f.url}.metadata` });
  if (got || !filename.endsWith('.whl')) return got;
  // Advertised but not served upstream: pip fails hard on that 404, so read it out of the wheel.
  return metadataFromWheel(proxy, project, filename, f.coreMetadata === true ? null : (f.coreMetadata.sha256 ?? null), trail);
}

/** A proxy's `.metadata` extracted from its (cached or fetched) wheel, checked against the advertised hash, stored. */
async function metadataFromWheel(proxy: ProxyRepository, project: string, filename: string, advertised: string | null, trail?: string[]): Promise<Content | null> {
  const found = await findFile(proxy, project, filename, false, trail);
  if (!found) return null;
  const wheel = found.pending ? await found.pending.stored : found;
  const [name, version] = filename.split('-');
  let bytes: Buffer;
  try {
    bytes = await readWheelMetadata((start, end) => wheel.open({ start, end }), wheel.blob.size, name, version);
  } catch (e) {
    if (e instanceof WheelError) throw new AppError('BAD_GATEWAY', `Repository '${proxy.name}': ${filename} has no usable METADATA (${e.message})`);
    throw e;
  }
  const sha = createHash('sha256').update(bytes).digest('hex');
  if (advertised && sha !== advertised) throw new AppError('BAD_GATEWAY', `Repository '${proxy.name}': the METADATA of ${filename} does not match the sha256 its page advertises`);
  const path = metadataPath(project, filename);
  await proxy.change({ source: 'proxy', key: path }, async (c) => {
    c.put(path, await c.stageBytes(bytes), { contentType: 'text/plain; charset=utf-8', kind: 'content', component: componentOf(path), lastVerified: Date.now() });
  });
  return proxy.local(path);
}

export async function getFile(req: RouteRequest): Promise<void> {
  const { project, file } = req.params;
  const metadata = file.endsWith('.metadata');
  const filename = metadata ? file.slice(0, -'.metadata'.length) : file;
  const content = await findFile(req.repo, project, filename, metadata);
  if (!content) throw new AppError('NOT_FOUND', `File not found: ${project}/${file}`);
  await sendContent(req.ctx, content, { contentType: metadata ? 'text/plain; charset=utf-8' : 'application/octet-stream' });
  req.repo.downloaded(content);
}
