/**
 * PyPI (protocols.md §3) on `/repository/<repo>/` for hosted, proxy and group repositories: the
 * simple API (PEP 503/691 by negotiation, PEP 592/658/700/714), twine uploads, Warehouse's JSON
 * API, yanking through the REST API. The route table reads top to bottom.
 */
import { AppError } from '../../src/errors.js';
import type { FormatPlugin, RouteRequest } from '../../src/repository/format.js';
import { renderPypiError } from './errors.js';
import { getFile } from './files.js';
import { getProjectJson } from './json-api.js';
import { maintainPages } from './maintenance.js';
import { normalizeName } from './names.js';
import { getProjectList, getProjectPage } from './pages.js';
import { compareVersions, isPrerelease } from './pep440.js';
import { componentOf, groupMembers, isMetadata, mergeMetadata, proxyAsset, proxyExpected, pypiSection, upstreamHeaders, upstreamUrl, validateMetadata } from './proxy.js';
import { upload } from './upload.js';
import { yankRoutes } from './yank.js';

async function deleteFile(req: RouteRequest): Promise<void> {
  const { project, file } = req.params;
  const deleted = await req.repo.delete(`packages/${project}/${file}`, {
    access: req.access,
    origin: { principal: req.principal, remoteAddress: req.ctx.ip },
    audit: { domain: 'repository.asset', type: 'deleted', context: `packages/${project}/${file}`, attributes: { path: `packages/${project}/${file}` } },
  });
  if (!deleted) throw new AppError('NOT_FOUND', `File not found: ${project}/${file}`);
  req.ctx.status = 204;
}

/** `DELETE packages/<project>/`: every file of a project, in one change (the hook then drops its page). */
async function deleteProject(req: RouteRequest): Promise<void> {
  const project = normalizeName(req.params.project);
  if (req.repo.type === 'group') throw new AppError('METHOD_NOT_ALLOWED', `Content cannot be deleted through group '${req.repo.name}'; delete it in the member`);
  const prefix = `packages/${project}/`;
  const assets = await req.app.content.findAssets(req.repo.id, { pathPrefix: prefix });
  if (assets.length === 0) throw new AppError('NOT_FOUND', `Project not found: ${project}`);
  await req.repo.change({ source: 'client', access: req.access, origin: { principal: req.principal, remoteAddress: req.ctx.ip }, key: project }, (c) => {
    for (const a of assets) c.deleteAsset(a.path);
    c.audit({ domain: 'repository.component', type: 'deleted', context: project, attributes: { project, paths: assets.map((a) => a.path) } });
  });
  req.ctx.status = 204;
}

export const pypi: FormatPlugin = {
  name: 'pypi',
  sections: [{ key: 'pypi', schema: pypiSection }],
  routes: [
    { methods: ['POST'], path: /^(?:legacy\/?)?$/, need: 'add', handler: upload },
    { methods: ['GET'], path: /^simple\/?$/, need: 'read', handler: getProjectList },
    { methods: ['GET'], path: /^simple\/(?<project>[^/]+)\/?$/, need: 'read', handler: getProjectPage },
    { methods: ['GET'], path: /^packages\/(?<project>[^/]+)\/(?<file>[^/]+)$/, need: 'read', handler: getFile },
    { methods: ['DELETE'], path: /^packages\/(?<project>[^/]+)\/(?<file>[^/]+)$/, need: 'delete', handler: deleteFile },
    { methods: ['DELETE'], path: /^packages\/(?<project>[^/]+)\/?$/, need: 'delete', handler: deleteProject },
    { methods: ['GET'], path: /^pypi\/(?<project>[^/]+)\/(?:(?<version>[^/]+)\/)?json\/?$/, need: 'read', handler: getProjectJson },
  ],
  renderError: renderPypiError,
  // PyPI's upload form carries all three; pages list sha256 (and md5, blake2b-256 in JSON).
  digests: ['sha256', 'md5', 'blake2b256'],
  apiRoutes: yankRoutes,
  isMetadata,
  upstreamUrl: (remote, path) => upstreamUrl(remote, path),
  upstreamHeaders: (path) => upstreamHeaders(path),
  proxyAsset: (path) => proxyAsset(path),
  proxyExpected,
  validateMetadata: (path, open) => validateMetadata(path, open),
  mergeMetadata: (path, parts) => mergeMetadata(path, parts),
  groupMembers,
  maintain: maintainPages,
  compareVersions,
  isPrerelease,
  componentOf,
};
