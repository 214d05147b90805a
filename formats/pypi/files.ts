/**
 * Distribution files and their PEP 658 `.metadata`, for every repository type: hosted serves
 * what it stores; a proxy finds the file's upstream URL (often on another host, as pypi.org's
 * files.pythonhosted.org) on its cached page and fetches it once, verified against the page's
 * sha256; a group asks its members in order (the first that has the file wins, as on its page).
 */
import { AppError } from '../../src/errors.js';
import { sendContent } from '../../src/http/send-content.js';
import type { RouteRequest } from '../../src/repository/format.js';
import type { ProxyRepository } from '../../src/repository/proxy-repository.js';
import type { GroupRepository, Repository } from '../../src/repository/repository.js';
import type { Content } from '../../src/repository/types.js';
import { filePath, metadataPath } from './layout.js';
import { projectPage } from './pages.js';

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
  // Only what upstream advertised is asked for (pip derives `.metadata` URLs from the page it got).
  if (metadata && !f.coreMetadata) return null;
  return proxy.get(path, { upstreamPath: metadata ? `${f.url}.metadata` : f.url });
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
