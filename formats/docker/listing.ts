/**
 * A docker repository's assets through the core's read API, page by page (the catalog and GC
 * walk them; neither needs them all in memory at once).
 */
import type { AssetView } from '../../src/content/types.js';
import type { Repository } from '../../src/repository/repository.js';
import type { Stowage } from '../../src/stowage.js';
import { encodeToken } from '../../src/content/content-service.js';

const PAGE = 1000;

/** The assets under `prefix`, in id order; `afterId`: only those stored after that id (newer rows). */
export async function* assetsOf(app: Stowage, repo: Repository, prefix = 'v2/', afterId = 0): AsyncGenerator<AssetView> {
  let token: string | null = afterId > 0 ? encodeToken(afterId) : null;
  do {
    const page = await app.content.listAssets({ repositoryIds: [repo.id], pathPrefix: prefix }, token, PAGE);
    yield* page.items;
    token = page.continuationToken;
  } while (token);
}

export async function* assetPaths(app: Stowage, repo: Repository): AsyncGenerator<string> {
  for await (const a of assetsOf(app, repo)) yield a.path;
}
