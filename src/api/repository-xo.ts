import type { Repository } from '../repository/repository.js';
import type { RepositoryConfig } from '../repository/types.js';
import type { Secrets } from '../security/secrets.js';
import type { FormatSection } from '../repository/config-schema.js';
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
  for (const [obj, k] of sectionSecrets(out, repo.format.sections)) if (obj[k] !== undefined) obj[k] = null;
  if (type === 'proxy') out.routingRuleName = rest.routingRuleName ?? rest.routingRule ?? null;
  return out;
}

/**
 * A configuration read back from GET and sent again by PUT carries null secrets: keep the stored
 * ones when the credential is otherwise unchanged (same type and user), as automation expects.
 */
export function keepSecrets(next: RepositoryConfig, current: RepositoryConfig, sections: readonly FormatSection[] = []): RepositoryConfig {
  for (const [obj, k, section] of sectionSecrets(next, sections)) {
    const was = (current[section] as Record<string, unknown> | null | undefined)?.[k];
    if ((obj[k] === null || obj[k] === undefined) && typeof was === 'string') obj[k] = was;
  }
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
export function refuseSealedSecrets(cfg: RepositoryConfig, secrets: Secrets, sections: readonly FormatSection[] = []): RepositoryConfig {
  for (const [obj, k, section] of sectionSecrets(cfg, sections)) {
    const v = obj[k];
    if (typeof v === 'string' && secrets.isEncrypted(v)) throw badRequest(`${section}.${k}: must be the value itself`, { field: `${section}.${k}` });
  }
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
export function hasNewSecrets(cfg: RepositoryConfig, secrets: Secrets, sections: readonly FormatSection[] = []): boolean {
  const a = cfg.httpClient?.authentication;
  const own = [...sectionSecrets(cfg, sections)].map(([obj, k]) => obj[k] as string | null | undefined);
  return [a?.password, a?.bearerToken, ...own].some((v) => !!v && !secrets.isEncrypted(v));
}

/** Upstream credentials encrypted for storage (values already encrypted, kept by keepSecrets, stay as they are). */
export function sealSecrets(cfg: RepositoryConfig, secrets: Secrets, sections: readonly FormatSection[] = []): RepositoryConfig {
  for (const [obj, k] of sectionSecrets(cfg, sections)) if (typeof obj[k] === 'string' && obj[k]) obj[k] = secrets.encrypt(obj[k]);
  const a = cfg.httpClient?.authentication;
  if (a?.password) a.password = secrets.encrypt(a.password);
  if (a?.bearerToken) a.bearerToken = secrets.encrypt(a.bearerToken);
  return cfg;
}

/** A configuration for the audit log: credentials replaced by a marker. */
export function auditConfig(cfg: RepositoryConfig, sections: readonly FormatSection[] = []): Record<string, unknown> {
  const out = structuredClone(cfg) as RepositoryConfig;
  for (const [obj, k] of sectionSecrets(out, sections)) if (obj[k]) obj[k] = '<secret>';
  const a = out.httpClient?.authentication;
  if (a) {
    if (a.password) a.password = '<secret>';
    if (a.bearerToken) a.bearerToken = '<secret>';
  }
  return out as unknown as Record<string, unknown>;
}

/** The credential fields of a configuration's format sections: [section object, field, section key]. */
function* sectionSecrets(cfg: Record<string, unknown>, sections: readonly FormatSection[] = []): Generator<[Record<string, unknown>, string, string]> {
  for (const s of sections) {
    const obj = cfg[s.key];
    if (!obj || typeof obj !== 'object') continue;
    for (const k of s.secrets ?? []) yield [obj as Record<string, unknown>, k, s.key];
  }
}
