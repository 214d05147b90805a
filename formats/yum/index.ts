/**
 * yum/dnf repositories (protocols.md §5): hosted repositories whose repodata the maintenance
 * hook keeps true from the metadata parsed at upload; proxies that keep upstream's repodata
 * byte for byte (repomd.xml revalidated, everything it names cached for good).
 */
import { AppError } from '../../src/errors.js';
import type { FormatPlugin, RouteRequest } from '../../src/repository/format.js';
import { sendContent } from '../../src/http/send-content.js';
import { renderListing } from '../../src/http/listing.js';
import { GroupRepository } from '../../src/repository/repository.js';
import { groupApps, groupContent, groupSignature, mergeRepomd } from './group-merge.js';
import { deleteFile, putFile } from './hosted.js';
import { isYumMetadata, rpmComponentOfPath, yumContentType, yumSection, yumSigningSection } from './paths.js';
import { maintainRepodata, requestGeneration } from './repodata-service.js';
import { signingRoutes } from './signing-api.js';
import { signingChanged } from './signing.js';
import { compareEvr } from './rpmvercmp.js';
import { inspectYumUpload, planYumUpload } from './upload.js';

async function get(req: RouteRequest): Promise<void> {
  const { ctx, repo, path } = req;
  if (path === '' && !ctx.path.endsWith('/')) {
    ctx.redirect(ctx.path + '/' + (ctx.querystring ? '?' + ctx.querystring : ''));
    return;
  }
  if (path === '' || path.endsWith('/')) {
    const entries = await repo.list(path);
    if (entries.length === 0 && path !== '') throw new AppError('NOT_FOUND', `Path not found: ${path}`);
    renderListing(ctx, repo.name, path, entries);
    return;
  }
  let content;
  if (repo instanceof GroupRepository) groupApps.set(repo, req.app);
  const signed = /^(.*repodata\/repomd\.xml)\.(asc|key)$/.exec(path);
  if (repo instanceof GroupRepository && signed) content = await groupSignature(req.app, repo, signed[1], signed[2] as 'asc' | 'key');
  else content = repo instanceof GroupRepository ? await groupContent(repo, path) : await repo.get(path);
  // A hosted repository nothing was uploaded to yet is an empty yum repository, as createrepo_c makes one.
  if (!content && repo.type === 'hosted' && path === 'repodata/repomd.xml') {
    await requestGeneration(req.app, repo, '');
    content = await repo.get(path);
  }
  // A key set or changed in the configuration since the last generation: sign again before answering.
  const repomd = /^(.*)repodata\/repomd\.xml(?:\.asc|\.key)?$/.exec(path);
  if (repomd && repo.type === 'hosted' && (await signingChanged(req.app, repo, `${repomd[1]}repodata/repomd.xml`))) {
    await requestGeneration(req.app, repo, repomd[1]);
    content = await repo.get(path);
  }
  if (!content) throw new AppError('NOT_FOUND', `Path not found: ${path}`);
  // Compressed repodata is served as the bytes repomd.xml's checksum covers: never with Content-Encoding.
  await sendContent(ctx, content, { contentType: yumContentType(path) });
  if (isYumMetadata(path)) ctx.set('Cache-Control', 'no-cache');
  repo.downloaded(content);
}

export const yum: FormatPlugin = {
  name: 'yum',
  sections: [
    { key: 'yum', schema: yumSection, defaults: (type) => (type === 'hosted' ? { repodataDepth: 0, deployPolicy: 'STRICT' } : undefined) },
    { key: 'yumSigning', schema: yumSigningSection, secrets: ['keypair', 'passphrase'] },
  ],
  // sha256 names packages in repodata (pkgid) and the repodata files themselves.
  digests: ['sha256'],
  routes: [
    { methods: ['GET'], path: /(?:^|\/)$/, need: 'browse', handler: get },
    { methods: ['GET'], path: /^/, need: 'read', handler: get },
    { methods: ['PUT'], path: /^/, need: 'add', handler: putFile },
    { methods: ['DELETE'], path: /^/, need: 'delete', handler: deleteFile },
  ],
  apiRoutes: signingRoutes,
  planUpload: planYumUpload,
  inspectUpload: inspectYumUpload,
  maintain: maintainRepodata,
  compareVersions: compareEvr,
  // rpm has no prerelease marker a repository manager could rely on (`~rc1` is a convention).
  isPrerelease: () => false,
  componentOf: rpmComponentOfPath,
  isMetadata: isYumMetadata,
  mergeMetadata: async (path, parts, group) => (path.endsWith('repodata/repomd.xml') ? mergeRepomd(path, parts, group) : null),
  proxyAsset: (path) => ({ contentType: yumContentType(path), component: rpmComponentOfPath(path) }),
};
