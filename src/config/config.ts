import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

/**
 * Settings come from an optional JSON config file (STOWAGE_CONFIG, or <dataDir>/stowage.json)
 * overlaid by STOWAGE_* environment variables. Every setting is validated at start; an invalid
 * one stops the server with a message naming it.
 */
/** Numbers from env vars are strings; a blank one is an error, not 0 (what Number('') gives). */
const numeric = <T extends z.ZodType>(schema: T) => z.preprocess((v) => (typeof v === 'string' && v.trim() !== '' ? Number(v) : v), schema);
const durationSeconds = numeric(z.number().int().min(0));

export const ConfigSchema = z.object({
  dataDir: z.string().min(1),
  http: z.object({
    port: numeric(z.number().int().min(0).max(65535)),
    host: z.string().min(1),
    /** Largest non-blob request body the REST API accepts (JSON), bytes. */
    maxJsonBytes: numeric(z.number().int().positive()),
    /** Time a client has to send a request's headers, seconds (0 = no limit). */
    headersTimeoutSeconds: durationSeconds,
    /**
     * A request body that sends nothing for this long is answered 408 and closed, seconds (0 = no
     * limit). An idle timeout, not a total one: a long upload that keeps sending is never cut.
     */
    bodyIdleTimeoutSeconds: durationSeconds,
    /** Request body bytes buffered at once by callers that have not signed in, in total (0 = no cap). */
    maxUnauthenticatedBodyBytes: numeric(z.number().int().min(0)),
    /** Grace for in-flight requests on SIGTERM, seconds. */
    shutdownGraceSeconds: durationSeconds,
    /**
     * Behind a reverse proxy: take the client address from X-Forwarded-For (audit log, login
     * throttling). Off by default, since a client could otherwise choose its own address.
     */
    trustProxy: z.boolean(),
    /**
     * Send stored files with sendfile(2) through the native helper (built by `npm run build`;
     * without it files are sent from JavaScript whatever this says).
     */
    sendfile: z.boolean(),
  }),
  /** Database URL: postgres://… for PostgreSQL, otherwise a SQLite file path (default <dataDir>/db/stowage.sqlite). */
  db: z.string().optional(),
  /** External URL used in generated links; otherwise derived from the request (X-Forwarded-*). */
  baseUrl: z.url().optional(),
  adminPassword: z.string().min(1).optional(),
  /** Key for secrets at rest; otherwise <dataDir>/secret.key (every node of a cluster needs the same). */
  secretKey: z.string().min(16).optional(),
  // Strings were mapped by parseBool; anything left that is not a boolean is an error (coercion
  // would turn every non-empty string, 'off' misspelt included, into true).
  anonymousAccess: z.boolean(),
  blobs: z.object({
    /** Blobs unreferenced for at least this long are removed by the blob GC task. */
    gcGraceSeconds: durationSeconds,
    /** How often the blob GC task runs (0 = only when run by hand). */
    gcIntervalSeconds: durationSeconds,
    /**
     * Below this many free bytes (on a file blob store's filesystem or the data directory's) new
     * content is refused with 507 and the store reports itself unwritable.
     */
    minFreeBytes: numeric(z.number().int().min(0)),
    /** A file of this size in the data directory, given back when the disk is full so deletes can still commit (0: none). */
    reserveBytes: numeric(z.number().int().min(0)),
  }),
  proxy: z.object({
    /** Upstream timeout when a repository sets none, seconds. */
    defaultTimeoutSeconds: numeric(z.number().positive()),
    /** First auto-block window after a remote fails, seconds; later windows grow (Fibonacci, as Nexus). */
    autoBlockInitialSeconds: numeric(z.number().positive()),
    /** Longest auto-block window, seconds. */
    autoBlockMaxSeconds: numeric(z.number().positive()),
  }),
  log: z.object({ level: z.enum(['debug', 'info', 'warn', 'error', 'silent']) }),
  /**
   * Shared format ports: format name → a port whose listener serves that format's root routes at
   * `/` for all its repositories (e.g. `/v2/<repo>/<image>/…`), as on the main port.
   */
  formatPorts: z.record(z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'a format name'), numeric(z.number().int().min(1).max(65535))),
});

export type Config = z.infer<typeof ConfigSchema>;

/** Environment variable → config path. */
const ENV: Record<string, string[]> = {
  STOWAGE_DATA_DIR: ['dataDir'],
  STOWAGE_HTTP_PORT: ['http', 'port'],
  STOWAGE_HTTP_HOST: ['http', 'host'],
  STOWAGE_MAX_JSON_BYTES: ['http', 'maxJsonBytes'],
  STOWAGE_SHUTDOWN_GRACE: ['http', 'shutdownGraceSeconds'],
  STOWAGE_HEADERS_TIMEOUT: ['http', 'headersTimeoutSeconds'],
  STOWAGE_BODY_IDLE_TIMEOUT: ['http', 'bodyIdleTimeoutSeconds'],
  STOWAGE_MAX_UNAUTHENTICATED_BODY_BYTES: ['http', 'maxUnauthenticatedBodyBytes'],
  STOWAGE_TRUST_PROXY: ['http', 'trustProxy'],
  STOWAGE_SENDFILE: ['http', 'sendfile'],
  STOWAGE_DB: ['db'],
  STOWAGE_BASE_URL: ['baseUrl'],
  STOWAGE_ADMIN_PASSWORD: ['adminPassword'],
  STOWAGE_SECRET_KEY: ['secretKey'],
  STOWAGE_ANONYMOUS: ['anonymousAccess'],
  STOWAGE_BLOB_GC_GRACE: ['blobs', 'gcGraceSeconds'],
  STOWAGE_BLOB_GC_INTERVAL: ['blobs', 'gcIntervalSeconds'],
  STOWAGE_BLOB_MIN_FREE: ['blobs', 'minFreeBytes'],
  STOWAGE_SPACE_RESERVE: ['blobs', 'reserveBytes'],
  STOWAGE_PROXY_TIMEOUT: ['proxy', 'defaultTimeoutSeconds'],
  STOWAGE_PROXY_AUTOBLOCK_INITIAL: ['proxy', 'autoBlockInitialSeconds'],
  STOWAGE_PROXY_AUTOBLOCK_MAX: ['proxy', 'autoBlockMaxSeconds'],
  STOWAGE_LOG_LEVEL: ['log', 'level'],
  STOWAGE_FORMAT_PORTS: ['formatPorts'],
};

/** Settings whose env var is a list `key:value[,key:value…]` (a map in the config file). */
const MAP_SETTINGS = new Set(['formatPorts']);

function parseMap(name: string, v: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of v
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)) {
    const m = /^([^:=\s]+)\s*[:=]\s*(\S+)$/.exec(entry);
    if (!m) throw new ConfigError(`Invalid setting ${name}: expected format:port[,format:port…], got '${entry}'`);
    out[m[1]] = m[2];
  }
  return out;
}

function defaults(): Record<string, unknown> {
  return {
    dataDir: './data',
    http: {
      port: 8081,
      host: '0.0.0.0',
      maxJsonBytes: 10 * 1024 * 1024,
      headersTimeoutSeconds: 60,
      bodyIdleTimeoutSeconds: 60,
      maxUnauthenticatedBodyBytes: 32 * 1024 * 1024,
      shutdownGraceSeconds: 30,
      trustProxy: false,
      sendfile: true,
    },
    anonymousAccess: true,
    blobs: { gcGraceSeconds: 24 * 3600, gcIntervalSeconds: 24 * 3600, minFreeBytes: 64 * 1024 * 1024, reserveBytes: 8 * 1024 * 1024 },
    proxy: { defaultTimeoutSeconds: 60, autoBlockInitialSeconds: 40, autoBlockMaxSeconds: 3600 },
    log: { level: 'info' },
    formatPorts: {},
  };
}

export class ConfigError extends Error {}

function setPath(obj: Record<string, unknown>, keys: string[], value: unknown): void {
  let o = obj;
  for (const k of keys.slice(0, -1)) {
    if (typeof o[k] !== 'object' || o[k] === null) o[k] = {};
    o = o[k] as Record<string, unknown>;
  }
  o[keys[keys.length - 1]] = value;
}

function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && cur && typeof cur === 'object' && !Array.isArray(cur)
        ? deepMerge(cur as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

const BOOLEAN_SETTINGS = new Set(['anonymousAccess', 'http.trustProxy', 'http.sendfile']);

function parseBool(v: string): unknown {
  if (/^(1|true|yes|on)$/i.test(v)) return true;
  if (/^(0|false|no|off)$/i.test(v)) return false;
  return v;
}

/** Loads and validates the configuration; `env` and `overrides` exist for tests. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Record<string, unknown> = {}): Config {
  let raw = defaults();
  const dataDir = env.STOWAGE_DATA_DIR ?? (overrides.dataDir as string | undefined) ?? './data';
  const file = env.STOWAGE_CONFIG ?? path.join(dataDir, 'stowage.json');
  if (existsSync(file)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new ConfigError(`Invalid config file ${file}: ${(e as Error).message}`);
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new ConfigError(`Invalid config file ${file}: expected a JSON object`);
    }
    raw = deepMerge(raw, parsed as Record<string, unknown>);
  } else if (env.STOWAGE_CONFIG) {
    throw new ConfigError(`STOWAGE_CONFIG names a file that does not exist: ${file}`);
  }
  for (const [name, keys] of Object.entries(ENV)) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    const key = keys.join('.');
    setPath(raw, keys, BOOLEAN_SETTINGS.has(key) ? parseBool(v) : MAP_SETTINGS.has(key) ? parseMap(name, v) : v);
  }
  raw = deepMerge(raw, overrides);
  if (typeof raw.anonymousAccess === 'string') raw.anonymousAccess = parseBool(raw.anonymousAccess);
  const result = ConfigSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0];
    const p = issue.path.map(String);
    // The env var of the setting, or of the map holding it (STOWAGE_FORMAT_PORTS for formatPorts.x).
    const envName = Object.entries(ENV).find(
      ([, keys]) => keys.join('.') === p.slice(0, keys.length).join('.') && (keys.length === p.length || MAP_SETTINGS.has(keys.join('.'))),
    )?.[0];
    const name = envName ? `${envName} (${p.join('.')})` : p.join('.');
    throw new ConfigError(`Invalid setting ${name}: ${issue.message}`);
  }
  const cfg = result.data;
  const seen = new Map<number, string>();
  for (const [format, port] of Object.entries(cfg.formatPorts)) {
    const name = `STOWAGE_FORMAT_PORTS (formatPorts.${format})`;
    if (port === cfg.http.port) throw new ConfigError(`Invalid setting ${name}: port ${port} is the main HTTP port (http.port)`);
    const other = seen.get(port);
    if (other) throw new ConfigError(`Invalid setting ${name}: port ${port} is already the shared port of format '${other}'`);
    seen.set(port, format);
  }
  cfg.dataDir = path.resolve(cfg.dataDir);
  if (cfg.baseUrl) cfg.baseUrl = cfg.baseUrl.replace(/\/+$/, '');
  return cfg;
}
