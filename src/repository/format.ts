import type Koa from 'koa';
import type { Readable } from 'node:stream';
import type { AppError } from '../errors.js';
import type { Principal } from '../security/principal.js';
import type { FormatSection } from './config-schema.js';
import type { Repository } from './repository.js';
import type { RepositoryConfig } from './types.js';
import type { AccessCheck, Content, ContentAction } from './types.js';
import type { ComponentInput } from '../content/types.js';
import type { ComponentFilter } from '../content/content-service.js';
import type { Stowage } from '../stowage.js';
import type { UpstreamClient, UpstreamResponse } from '../proxy/upstream-client.js';
import type { TaskType } from '../tasks/task-service.js';
import type { CommittedChange } from './unit-of-work.js';

/** Digest algorithms a format may ask ingest to compute (defined with ingest, in src/blob/digest-set.ts). */
export type { DigestAlgorithm } from '../blob/digest-set.js';
import type { DigestAlgorithm } from '../blob/digest-set.js';

/** One content request, after the core resolved the repository and checked access. */
export interface ContentRequest {
  ctx: Koa.Context;
  repo: Repository;
  /** Path inside the repository, percent-decoded and validated (no leading '/', no '..'). */
  path: string;
  /** The same path as received, still percent-encoded (npm's `@scope%2fname`). */
  rawPath: string;
  principal: Principal;
  access: AccessCheck;
  app: Stowage;
  /** Set when the request arrived through the format's root route (not `/repository/<name>/`). */
  rootRoute?: RootRoute;
  /** Set when the request arrived on the repository's dedicated listener (request path = `/` + path). */
  listener?: boolean;
}

/**
 * A path space at the root of the main listener that a format serves for its repositories (a
 * protocol whose clients cannot use a path prefix). The core consults it after `/repository/`.
 */
export interface RootRoute {
  /** Raw path prefix, e.g. `/x/`; also matches the prefix without its trailing slash. */
  prefix: string;
  /**
   * The repository named by the raw request path and the raw path inside it (as it would follow
   * `/repository/<name>/`); null when the path names no repository (then `handleUnrouted`).
   */
  resolve(rawPath: string): { repository: string; rawPath: string } | null;
  /** Answers a request under the prefix that names no repository; default 404. */
  handleUnrouted?(ctx: Koa.Context, app: Stowage): Promise<void>;
}

/** What a request needs: a content action, or `public` for endpoints every client may call (ping, login). */
export type RequestNeed = ContentAction | 'public';

/** A multipart component upload as received: text fields, and the file fields with their sizes. */
export interface UploadForm {
  fields: Map<string, string>;
  /** `open` reads a received file (given by the core; a format reads one only to plan, e.g. coordinates from a POM). */
  files: Map<string, { size: number; open?: () => Readable }>;
}

/** One file of an upload and where it goes. */
export interface UploadPlan {
  /** The form's file field. */
  field: string;
  path: string;
  contentType: string;
  component?: ComponentInput | null;
  /** The asset's attributes (what `inspectUpload` read from the file; what asset search parameters filter on). */
  attributes?: Record<string, unknown>;
  /** A file the format generates (e.g. a POM) rather than one of the form's files; `field` then names the field that asked for it. Small. */
  content?: Buffer;
}

/** One GET of a repository path upstream, as the proxy makes it (its URL mapping, headers and HTTP client). */
export interface UpstreamFetch {
  get(path: string): Promise<UpstreamResponse>;
}

/**
 * A REST endpoint a format adds to the API, mounted at `/service/rest/v1/<format name><path>`
 * (the format's name keeps formats from colliding with each other and with the core's routes).
 * The handler authorizes like any API route (through the one authorizer) and streams its body.
 */
export interface ApiRoute {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Below the format's segment, starting with `/` (e.g. `/archive`). */
  path: string;
  handler(ctx: Koa.Context, app: Stowage): Promise<void>;
  /** Its OpenAPI 3 operation object (summary, description, parameters, requestBody, responses). */
  openapi: Record<string, unknown>;
}

/** What a format's metadata states about a file before it is fetched (npm `dist.shasum`, a docker digest). */
export interface ExpectedContent {
  size?: number;
  sha256?: string;
  sha1?: string;
}

/** A content request matched by one of the format's routes, with the route's named groups. */
export interface RouteRequest extends ContentRequest {
  params: Record<string, string>;
}

/**
 * One row of a format's route table. The core matches the repository path (decoded, no leading
 * `/`) against the rows in order: the first row whose `path` matches and whose `methods` include
 * the request's method gives both the permission check (`need`) and the handler. A path some row
 * matches under other methods only is a 405 listing those methods; a path no row matches is a 404.
 */
export interface FormatRoute {
  /** HTTP methods; `GET` also answers `HEAD`. */
  methods: readonly string[];
  /** Matched against the decoded repository path; named groups become `params`. */
  path: RegExp;
  /** The action the request needs (checked by the one authorizer before the handler runs). */
  need: RequestNeed | ((ctx: Koa.Context, params: Record<string, string>) => RequestNeed);
  handler(req: RouteRequest): Promise<void>;
}

type RouteMatch = { route: FormatRoute; params: Record<string, string> } | { allowed: string[] };

/**
 * Matches by method and path, per route table: a pure function of its inputs, and a hot path
 * walks the same few paths (a format's table has up to ~25 patterns to try). Bounded.
 */
const matches = new WeakMap<readonly FormatRoute[], Map<string, RouteMatch>>();
const MAX_MATCHES = 2000;

/** The route of `routes` for a method and path, or the methods the path allows when none fits. */
export function matchRoute(routes: readonly FormatRoute[], method: string, path: string): RouteMatch {
  let seen = matches.get(routes);
  if (!seen) matches.set(routes, (seen = new Map()));
  const key = `${method} ${path}`;
  let m = seen.get(key);
  if (!m) {
    m = findRoute(routes, method, path);
    if (seen.size >= MAX_MATCHES) seen.clear();
    seen.set(key, m);
  }
  // Handlers get their own parameters object.
  return 'route' in m ? { route: m.route, params: { ...m.params } } : m;
}

function findRoute(routes: readonly FormatRoute[], method: string, path: string): RouteMatch {
  const allowed = new Set<string>();
  const wanted = method === 'HEAD' ? 'GET' : method;
  for (const route of routes) {
    const m = route.path.exec(path);
    if (!m) continue;
    if (route.methods.includes(wanted) || route.methods.includes(method)) return { route, params: { ...(m.groups ?? {}) } };
    for (const x of route.methods) {
      allowed.add(x);
      if (x === 'GET') allowed.add('HEAD');
    }
  }
  return { allowed: [...allowed] };
}

export interface MergeInput {
  member: Repository;
  content: Content;
}

/**
 * Everything the core knows about a format. A format is a folder under formats/ exporting
 * one of these; the core never names a format.
 */
export interface FormatPlugin {
  readonly name: string;
  /** Other names the REST API accepts for the format in its paths (a shorter name Nexus also accepts). */
  readonly aliases?: readonly string[];
  /** Config sections the REST API accepts for this format (raw's `raw`, docker's `docker`…). */
  readonly sections?: FormatSection[];
  /** The format's content routes: one match yields the permission check and the handler. */
  readonly routes: readonly FormatRoute[];
  /**
   * The digests this format's assets need (docker: sha256; npm: sha1, sha512; raw: sha256, sha1,
   * md5 as Nexus shows them). Ingest computes exactly these (sha256 always: blobs are addressed by it).
   */
  readonly digests?: readonly DigestAlgorithm[];
  /** Paths at the root of the main listener routed to this format's repositories. */
  readonly rootRoutes?: RootRoute[];
  /** Renders an error for this format's clients; default is the core's plain/JSON rendering. */
  renderError?(ctx: Koa.Context, err: AppError, app?: Stowage): void;

  /**
   * Scoped bearer token realms this format's clients use (docker's `DockerToken`): registered with
   * the realm chain, accepting tokens of this format's kind (app.scopedTokens.issue(…, format.name)).
   */
  readonly tokenRealms?: Array<{ id: string; name: string }>;
  /**
   * Realms over the stored user tokens (app.tokens) of this format's kind (npm's `NpmToken`):
   * registered with the realm chain, accepting tokens the format issued with
   * `app.tokens.issue(…, { kind: format.name })` as `Authorization: Bearer` (or a Basic password).
   * Stored hashed in the database, so every node accepts them and list/revoke work.
   */
  readonly userTokenRealms?: Array<{ id: string; name: string }>;

  /**
   * Task types this format contributes (docker's garbage collection and upload purge), registered
   * by the core at start-up next to its own; a type with `defaultInstance` gets one scheduled task
   * created on first start.
   */
  readonly tasks?: TaskType[];

  // Dedicated listeners ------------------------------------------------------------------
  /**
   * A port of its own a repository asks for (docker's `docker.httpPort`), or null. Every request
   * on that port goes to that repository: request path `/<p>` is repository path `<p>`.
   */
  listenerPort?(config: RepositoryConfig): number | null;
  /** The config field naming that port, for validation errors (`docker.httpPort`). */
  readonly listenerPortField?: string;

  /**
   * Nexus component upload (`POST /service/rest/v1/components`): which files of the form go to
   * which paths, in `target` (the hosted repository that stores them: its config, e.g. a version
   * policy, may refuse the form). Pure (no database, no HTTP); throws a 400 naming the bad field.
   * Formats without it do not accept component uploads.
   */
  planUpload?(form: UploadForm, target: Repository): UploadPlan[] | Promise<UploadPlan[]>;
  /**
   * Checks one planned upload file against the target repository before anything is stored
   * (the file is spooled: `open` reads it from the start) and returns what to change in its plan
   * (a component or attributes read from the file); throws a 400 for a file the format refuses.
   */
  inspectUpload?(repo: Repository, plan: UploadPlan, open: () => Readable): Promise<Partial<UploadPlan>>;

  /** REST endpoints of this format under `/service/rest/v1/<name>/` (described in the OpenAPI document). */
  readonly apiRoutes?: ApiRoute[];

  // Proxy hooks -------------------------------------------------------------------------
  /** Metadata paths are revalidated after metadataMaxAge; others are content (contentMaxAge). */
  isMetadata?(path: string): boolean;
  /** Upstream URL for a path; default: remoteUrl joined with the path. */
  /**
   * The format's defaults for a proxy's cache ages (minutes; -1 keeps for good) where Nexus's
   * differ from the core's 1440 (Maven: artifacts never expire). A body's own values win.
   */
  readonly proxyDefaults?: { contentMaxAge?: number; metadataMaxAge?: number };

  upstreamUrl?(remoteUrl: string, path: string, repo?: Repository): string;
  /** Extra request headers for fetching `path` upstream (Accept, a cached Authorization). */
  upstreamHeaders?(path: string, repo: Repository): Record<string, string> | Promise<Record<string, string>>;
  /**
   * Upstream answered 401: headers to retry the request with once (e.g. a bearer token fetched
   * from the challenge's realm), or null to give up. Auth failures are never cached.
   */
  upstreamChallenge?(res: UpstreamResponse, repo: Repository, client: UpstreamClient): Promise<Record<string, string> | null>;
  /**
   * How a proxy stores what it fetched for `path` (its component, a content type other than
   * upstream's). Default: upstream's Content-Type, no component.
   */
  proxyAsset?(path: string, upstream: { contentType: string | null }): { contentType?: string; component?: ComponentInput | null; attributes?: Record<string, unknown> };
  /**
   * The size or digest `path` must have, as the format's metadata states it (a cached packument's
   * `dist.shasum`, the digest in a blob's path), or null. A proxy refuses a body that differs, and
   * only a body verified this way (or by its own framing) becomes a permanent cache entry.
   */
  proxyExpected?(path: string, repo: Repository, upstream: UpstreamFetch): Promise<ExpectedContent | null>;
  /**
   * Whether a metadata document (fetched from upstream, or cached) is one the format can use: null
   * when it is, else why not. A body refused is never cached (the client gets a 502 naming the
   * reason, or the last usable copy); a cached copy refused counts as stale and is fetched again.
   * Without the hook every body is accepted.
   */
  validateMetadata?(path: string, open: () => Promise<Readable>): Promise<string | null>;

  // Content lifecycle -------------------------------------------------------------------
  /**
   * Called by the core after every committed change of an asset or component of this format,
   * whatever made it (the format's protocol, REST deletes, uploads, GC, cleanup; not the
   * changes this hook itself makes, source `maintenance`): the format keeps its derived metadata
   * true (npm's packument without a version deleted through the REST API). A failure is logged.
   */
  maintain?(change: CommittedChange, app: Stowage): Promise<void>;
  /**
   * After cleanup deleted components of `repo`: deletes, in the same run, what only they kept
   * (docker: manifests no tag names any more, and layers no manifest references), judging age as
   * of `asOf` and keeping what was stored, pushed or read within `graceMs` of it (uploads in
   * flight). Returns how many assets went and the blob ids they referenced (the core frees the
   * bytes nothing references any more).
   */
  reclaim?(repo: Repository, app: Stowage, opts: { asOf: number; graceMs: number; signal?: AbortSignal }): Promise<{ assetsDeleted: number; blobIds: number[] }>;
  /** Orders two versions of a component (negative: a before b). Default: no order (raw). */
  compareVersions?(a: string, b: string): number;
  /** Whether a version is a prerelease. Default: none is. */
  isPrerelease?(version: string): boolean;
  /** The component a repository path belongs to, or null (metadata, folders). */
  componentOf?(path: string): ComponentInput | null;
  /**
   * Search parameters of this format (Nexus's `<format>.<field>` ones), each mapped onto the core's
   * component filter (exact values, `*` wildcards); the REST search applies those present.
   */
  readonly searchParameters?: Record<string, (value: string) => ComponentFilter>;

  // Group hooks -------------------------------------------------------------------------
  /**
   * Merges a metadata document from every member that has it (in member order). Return null
   * to fall back to first-member-wins. Called only for paths where isMetadata is true.
   */
  mergeMetadata?(path: string, parts: MergeInput[], group: Repository): Promise<{ body: Buffer; contentType: string } | null>;
  /**
   * The members a group consults for `path` (routing, e.g. npm scopes pinned to hosted members
   * against dependency confusion): a subset of `members`, in order. Default: all of them. Members
   * left out are never asked (no upstream request through them).
   */
  groupMembers?(path: string, members: Repository[], group: Repository): Repository[];
}
