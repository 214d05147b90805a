import { z } from 'zod';
import { badRequest } from '../errors.js';
import type { RepositoryConfig, RepositoryType } from './types.js';

/** Nexus repository names: letters, digits, '.', '_', '-'; not starting with '.' or '_'. */
export const NAME_RE = /^[A-Za-z0-9-][A-Za-z0-9._-]{0,199}$/;

const minutes = z.number().int().min(-1);

const storage = z.object({
  blobStoreName: z.string().min(1).default('default'),
  strictContentTypeValidation: z.boolean().default(true),
  writePolicy: z.enum(['ALLOW', 'ALLOW_ONCE', 'DENY']).optional(),
});

const httpClient = z.object({
  blocked: z.boolean().default(false),
  autoBlock: z.boolean().default(true),
  connection: z
    .object({
      retries: z.number().int().min(0).max(10).nullable().optional(),
      userAgentSuffix: z.string().nullable().optional(),
      timeout: z.number().int().min(0).max(3600).nullable().optional(),
      enableCircularRedirects: z.boolean().optional(),
      enableCookies: z.boolean().optional(),
      useTrustStore: z.boolean().optional(),
    })
    .nullable()
    .optional(),
  authentication: z
    .object({
      type: z.enum(['username', 'bearerToken', 'ntlm']),
      username: z.string().nullable().optional(),
      password: z.string().nullable().optional(),
      bearerToken: z.string().nullable().optional(),
      ntlmHost: z.string().nullable().optional(),
      ntlmDomain: z.string().nullable().optional(),
      preemptive: z.boolean().optional(),
    })
    .nullable()
    .optional(),
});

const common = {
  name: z.string().regex(NAME_RE, 'must use letters, digits, ".", "_" and "-" only, and not start with "." or "_"'),
  online: z.boolean().default(true),
  cleanup: z
    .object({ policyNames: z.array(z.string()).default([]) })
    .nullable()
    .optional(),
};

const hosted = z.object({
  ...common,
  storage: storage.default({ blobStoreName: 'default', strictContentTypeValidation: true }),
  component: z.object({ proprietaryComponents: z.boolean().optional() }).nullable().optional(),
});

const proxy = z.object({
  ...common,
  storage: storage.default({ blobStoreName: 'default', strictContentTypeValidation: true }),
  proxy: z.object({
    remoteUrl: z.url().refine((u) => /^https?:\/\//i.test(u), 'must be an http or https URL'),
    contentMaxAge: minutes.default(1440),
    metadataMaxAge: minutes.default(1440),
  }),
  // Fractions of a minute are accepted (Nexus takes whole minutes) so short TTLs can be tested.
  negativeCache: z.object({ enabled: z.boolean().default(true), timeToLive: z.number().min(-1).default(1440) }).default({ enabled: true, timeToLive: 1440 }),
  httpClient: httpClient.default({ blocked: false, autoBlock: true }),
  routingRule: z.string().nullable().optional(),
  routingRuleName: z.string().nullable().optional(),
});

const group = z.object({
  ...common,
  storage: storage.default({ blobStoreName: 'default', strictContentTypeValidation: true }),
  group: z.object({
    memberNames: z.array(z.string().min(1)).default([]),
    writableMember: z.string().nullable().optional(),
  }),
});

const SCHEMAS = { hosted, proxy, group } as const;

/** A format's own section, e.g. raw's `{ contentDisposition }`. */
export interface FormatSection {
  key: string;
  schema: z.ZodType;
  /** Whether the section is required on a type. Missing optional sections get the schema's default. */
  defaults?: (type: RepositoryType) => unknown;
  /**
   * Fields of the section that are credentials (e.g. a signing key): sealed at rest, returned as
   * null, kept when a PUT sends them null, masked in audit records, like upstream passwords.
   */
  secrets?: readonly string[];
}

function fieldError(issue: z.core.$ZodIssue): never {
  const field = issue.path.map(String).join('.') || 'body';
  throw badRequest(`${field}: ${issue.message}`, { field });
}

/**
 * Validates a Nexus-shaped repository body for (format, type) and fills Nexus's defaults.
 * Errors are 400s whose message starts with the offending field.
 */
export function parseRepositoryConfig(
  format: string,
  type: RepositoryType,
  body: unknown,
  sections: FormatSection[],
  proxyDefaults?: { contentMaxAge?: number; metadataMaxAge?: number },
): RepositoryConfig {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw badRequest('body: expected a JSON object', { field: 'body' });
  const schema = SCHEMAS[type];
  const proxyBody = (body as Record<string, unknown>).proxy;
  // The format's cache ages under the body's own (a missing or malformed `proxy` is the schema's to report).
  const filled =
    type === 'proxy' && proxyDefaults && proxyBody && typeof proxyBody === 'object' && !Array.isArray(proxyBody) ? { ...body, proxy: { ...proxyDefaults, ...proxyBody } } : body;
  const parsed = schema.safeParse(filled);
  if (!parsed.success) fieldError(parsed.error.issues[0]);
  const cfg = { ...(parsed.data as Record<string, unknown>), format, type } as RepositoryConfig;
  if (type === 'hosted') cfg.storage.writePolicy = cfg.storage.writePolicy ?? 'ALLOW_ONCE';
  else delete cfg.storage.writePolicy;
  for (const s of sections) {
    const raw = (body as Record<string, unknown>)[s.key] ?? s.defaults?.(type);
    if (raw === undefined) continue;
    const r = s.schema.safeParse(raw);
    if (!r.success) fieldError({ ...r.error.issues[0], path: [s.key, ...r.error.issues[0].path] } as z.core.$ZodIssue);
    cfg[s.key] = r.data;
  }
  return cfg;
}

/**
 * What the REST API's document shows as a repository body: one object with the sections of
 * every type (which apply depends on the type) and the formats' sections under their keys.
 */
export function repositoryBodySchema(sections: FormatSection[]): z.ZodObject {
  const all = z.looseObject({ ...hosted.shape, ...proxy.shape, ...group.shape, ...Object.fromEntries(sections.map((s) => [s.key, s.schema])) });
  return all.partial().required({ name: true });
}
