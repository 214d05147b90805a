import type { Repository } from '../repository/repository.js';
import type { RepositoryConfig } from '../repository/types.js';

/** Nexus RepositoryXO: the summary `GET /repositories` lists. */
export function repositoryXO(repo: Repository, baseUrl: string) {
  const proxy = repo.config.proxy;
  return {
    name: repo.name,
    format: repo.format.name,
    type: repo.type,
    url: repositoryUrl(baseUrl, repo.name),
    attributes: proxy ? { proxy: { remoteUrl: proxy.remoteUrl } } : {},
  };
}

export function repositoryUrl(baseUrl: string, name: string): string {
  return `${baseUrl}/repository/${encodeURIComponent(name)}`;
}

/**
 * The full Nexus-shaped configuration (`GET /repositories/{format}/{type}/{name}`,
 * `/repositorySettings`). Upstream credentials are never sent back: the password and bearer
 * token come out as null.
 */
export function repositorySettingsXO(repo: Repository, baseUrl: string): Record<string, unknown> {
  const { name, format, type, online, ...rest } = structuredClone(repo.config);
  const out: Record<string, unknown> = { name, format, type, url: repositoryUrl(baseUrl, name), online, ...rest };
  out.cleanup = rest.cleanup ?? null;
  const auth = rest.httpClient?.authentication;
  if (auth) {
    if ('password' in auth || auth.type === 'username' || auth.type === 'ntlm') auth.password = null;
    if ('bearerToken' in auth || auth.type === 'bearerToken') auth.bearerToken = null;
  }
  if (type === 'proxy') out.routingRuleName = rest.routingRuleName ?? rest.routingRule ?? null;
  return out;
}

/**
 * A configuration read back from GET and sent again by PUT carries null secrets: keep the stored
 * ones when the credential is otherwise unchanged (same type and user), as automation expects.
 */
export function keepSecrets(next: RepositoryConfig, current: RepositoryConfig): RepositoryConfig {
  const a = next.httpClient?.authentication;
  const b = current.httpClient?.authentication;
  if (!a || !b || a.type !== b.type || (a.username ?? null) !== (b.username ?? null)) return next;
  if (a.password === null || a.password === undefined) a.password = b.password ?? null;
  if (a.bearerToken === null || a.bearerToken === undefined) a.bearerToken = b.bearerToken ?? null;
  return next;
}
