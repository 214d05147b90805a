/**
 * Maven 2 repositories (format `maven2`, as Nexus names it) for mvn and Gradle: hosted
 * (releases and timestamped snapshots), proxy and group, on `/repository/<repo>/` (protocols.md §4).
 * Deploys live in hosted.ts, generated metadata in maintenance.ts, proxy and group hooks in proxy.ts.
 */
import type Koa from 'koa';
import { AppError } from '../../src/errors.js';
import type { FormatPlugin, RouteRequest } from '../../src/repository/format.js';
import { sendContent } from '../../src/http/send-content.js';
import { HOT_MAX_AGE_MS, markHot } from '../../src/http/hot-responses.js';
import type { Repository } from '../../src/repository/repository.js';
import { renderListing } from '../../src/http/listing.js';
import { BASIC_CHALLENGE } from '../../src/http/auth.js';
import { digestOf } from './checksums.js';
import { componentOf } from './components.js';
import { contentTypeOf, parseMavenPath } from './layout.js';
import { maintainMetadata } from './maintenance.js';
import { mavenSection, sectionDefaults, sectionOf, versionRefusal } from './policy.js';
import { put } from './hosted.js';
import { groupMembers, isMetadata, mergeMetadata, proxyAsset, proxyExpected, validateMetadata, warnChecksums } from './proxy.js';
import { compareComponentVersions, isSnapshot } from './version.js';
import { mavenTasks } from './tasks.js';
import { planMavenUpload } from './upload.js';

async function get(req: RouteRequest): Promise<void> {
  const { ctx, repo, path } = req;
  if (path === '' || path.endsWith('/')) {
    const entries = await repo.list(path);
    if (entries.length === 0 && path !== '') throw new AppError('NOT_FOUND', `Path not found: ${path}`);
    renderListing(ctx, repo.name, path, entries);
    return;
  }
  const p = parseMavenPath(path);
  // A read the version policy excludes is not here (mvn then tries its next repository).
  if (p && repo.type !== 'group' && versionRefusal(repo, p)) throw new AppError('NOT_FOUND', `Not found: ${path}`);
  if (p?.kind === 'checksum') {
    // From the bytes this repository serves for the file: a group's merged metadata, a member's artifact.
    const target = await repo.get(p.target);
    if (!target) throw new AppError('NOT_FOUND', `Not found: ${path}`);
    const digest = await digestOf(req.app, target, p.algorithm);
    ctx.status = 200;
    ctx.set('Content-Type', 'text/plain');
    ctx.set('Last-Modified', new Date(Math.floor(target.asset.updated_at / 1000) * 1000).toUTCString());
    ctx.body = Buffer.from(digest);
    markHot(ctx, { maxAgeMs: hotAge(repo) });
    return;
  }
  const content = await repo.get(path);
  if (!content) throw new AppError('NOT_FOUND', `Not found: ${path}`);
  await sendContent(ctx, content, { disposition: sectionOf(repo).contentDisposition, contentType: p ? contentTypeOf(path) : undefined });
  repo.downloaded(content);
  // Small files (metadata, checksums' targets, poms) are answered from memory: replayable.
  if (!content.pending) markHot(ctx, { maxAgeMs: hotAge(repo), onReplay: () => repo.downloaded(content) });
}

/** Until the next commit for a hosted repository; a proxy's or group's answer also depends on time. */
function hotAge(repo: Repository): number | undefined {
  return repo.type === 'hosted' ? undefined : HOT_MAX_AGE_MS;
}

async function del(req: RouteRequest): Promise<void> {
  const { ctx, repo, path } = req;
  if (path === '' || path.endsWith('/')) throw new AppError('BAD_REQUEST', 'Folders are deleted through the REST API');
  const deleted = await repo.delete(path, {
    access: req.access,
    origin: { principal: req.principal, remoteAddress: ctx.ip },
    audit: { domain: 'repository.asset', type: 'deleted', context: path, attributes: { path } },
  });
  if (!deleted) throw new AppError('NOT_FOUND', `Not found: ${path}`);
  ctx.status = 204;
}

/**
 * Plain text, and the message as the HTTP reason phrase too: Maven's transports print the status
 * line (`Return code is: 400, ReasonPhrase: Repository version policy: …`), not the body.
 */
function renderMavenError(ctx: Koa.Context, err: AppError): void {
  if (err.status === 401 && !ctx.response.get('WWW-Authenticate')) ctx.set('WWW-Authenticate', BASIC_CHALLENGE);
  const phrase = err.message.replace(/[^\x20-\x7e]/g, ' ').slice(0, 200);
  if (phrase) ctx.message = phrase;
  ctx.set('Content-Type', 'text/plain; charset=utf-8');
  ctx.body = err.message + '\n';
}

export const maven: FormatPlugin = {
  name: 'maven2',
  aliases: ['maven'],
  sections: [{ key: 'maven', schema: mavenSection, defaults: sectionDefaults }],
  digests: ['sha1', 'md5', 'sha256', 'sha512'],
  routes: [
    { methods: ['GET'], path: /(?:^|\/)$/, need: 'browse', handler: get },
    { methods: ['GET'], path: /^/, need: 'read', handler: get },
    { methods: ['PUT'], path: /^/, need: 'add', handler: put },
    { methods: ['DELETE'], path: /^/, need: 'delete', handler: del },
  ],
  renderError: renderMavenError,
  planUpload: planMavenUpload,
  isMetadata,
  proxyAsset: (path) => proxyAsset(path),
  proxyExpected,
  validateMetadata,
  mergeMetadata: (path, parts) => mergeMetadata(path, parts),
  groupMembers: (path, members) => groupMembers(path, members),
  maintain: async (change, app) => {
    if (change.repository.type === 'proxy') return warnChecksums(change, app);
    await maintainMetadata(change, app);
  },
  compareVersions: compareComponentVersions,
  isPrerelease: isSnapshot,
  componentOf,
  // Nexus's maven search parameters: baseVersion is the component's (a snapshot's builds share
  // it), extension and classifier are those of the asset files (attributes stored at deploy,
  // upload and proxy time).
  searchParameters: {
    'maven.groupId': (v) => ({ namespace: v }),
    'maven.artifactId': (v) => ({ name: v }),
    'maven.baseVersion': (v) => ({ attributes: { 'maven2.baseVersion': v } }),
    'maven.extension': (v) => ({ assetAttributes: { 'maven2.extension': v } }),
    'maven.classifier': (v) => ({ assetAttributes: { 'maven2.classifier': v } }),
  },
  // As Nexus's maven2 proxies: released artifacts never change, metadata is revalidated daily.
  proxyDefaults: { contentMaxAge: -1, metadataMaxAge: 1440 },
  tasks: mavenTasks,
};
