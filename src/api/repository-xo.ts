import type { Repository } from '../repository/repository.js';
import type { RepositoryConfig } from '../repository/types.js';
import type { Secrets } from '../security/secrets.js';
import { badRequest } from '../errors.js';

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

/**
 * A credential sent in a request must be the credential itself: an encrypted-looking value would be
 * decrypted and sent upstream, which makes the server a decryption oracle for anyone holding a
 * ciphertext (a backup, another setting).
 */
export function refuseSealedSecrets(cfg: RepositoryConfig, secrets: Secrets): RepositoryConfig {
  const a = cfg.httpClient?.authentication;
  for (const k of ['password', 'bearerToken'] as const) {
    const v = a?.[k];
    if (typeof v === 'string' && secrets.isEncrypted(v)) {
      throw badRequest(`httpClient.authentication.${k}: must be the ${k === 'password' ? 'password' : 'token'} itself`, { field: `httpClient.authentication.${k}` });
    }
  }
  return cfg;
}

/** True when the configuration carries a credential not yet stored (sent in this request, still plain). */
export function hasNewSecrets(cfg: RepositoryConfig, secrets: Secrets): boolean {
  const a = cfg.httpClient?.authentication;
  return [a?.password, a?.bearerToken].some((v) => !!v && !secrets.isEncrypted(v));
}

/** Upstream credentials encrypted for storage (values already encrypted, kept by keepSecrets, stay as they are). */
export function sealSecrets(cfg: RepositoryConfig, secrets: Secrets): RepositoryConfig {
  const a = cfg.httpClient?.authentication;
  if (a?.password) a.password = secrets.encrypt(a.password);
  if (a?.bearerToken) a.bearerToken = secrets.encrypt(a.bearerToken);
  return cfg;
}

/** A configuration for the audit log: credentials replaced by a marker. */
export function auditConfig(cfg: RepositoryConfig): Record<string, unknown> {
  const out = structuredClone(cfg) as RepositoryConfig;
  const a = out.httpClient?.authentication;
  if (a) {
    if (a.password) a.password = '<secret>';
    if (a.bearerToken) a.bearerToken = '<secret>';
  }
  return out as unknown as Record<string, unknown>;
}
