import Router from '@koa/router';
import type Koa from 'koa';
import { z } from 'zod';
import type { Stowage } from '../stowage.js';
import { badRequest } from '../errors.js';
import { requireApp } from '../http/auth.js';
import { readJson } from './body.js';

/**
 * REST routes are declared, not registered: each resource file returns `ApiRoute[]` (method, koa
 * path, zod params/query/body, responses, who may call, handler), `index.ts` lists them, and both
 * the koa router (`mountRoutes`) and the OpenAPI document (`openapi.ts`) are built from that list,
 * so a route cannot be served undocumented. A handler checks what the declaration cannot (a
 * privilege naming the repository) and then calls `input.body()`: authorization before reading.
 */

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** One response of an operation: a JSON body described by a zod schema, another media type, or none. */
export interface ApiResponse {
  description: string;
  schema?: z.ZodType;
  /** Default `application/json` when there is a schema. */
  contentType?: string;
}

export interface ApiBody {
  schema: z.ZodType;
  /** Default `application/json`: `input.body()` reads it. Any other type the handler reads itself. */
  contentType?: string;
  description?: string;
  /**
   * Whether `input.body()` validates the JSON against `schema` (a 400 `<field>: <message>` on the
   * first issue). Off where a domain parser owns the checks and their messages (the schema then
   * describes what that parser accepts).
   */
  validate?: boolean;
}

/**
 * Who may call an operation: `privilege`, an application privilege the router checks before the
 * handler runs; `requires`, a sentence for the document when the handler checks itself (the
 * privilege names the repository, or depends on the caller), still before it reads the body.
 */
export type ApiAccess = 'public' | { privilege: string } | { requires: string };

export interface RouteInput<B> {
  /** The JSON body: size-capped, prototype keys refused, validated when declared so. Call it after the privilege checks. */
  body(): Promise<B>;
}

/** A REST operation: from these the koa routes and the OpenAPI document are both built. */
export interface ApiRoute<B = unknown> {
  method: Method;
  /** Under `/service/rest/v1`, in koa-router syntax (`/tasks/:id`). */
  path: string;
  operationId: string;
  tags: string[];
  summary: string;
  description?: string;
  access: ApiAccess;
  /** Path parameters: a `z.object` keyed by the `:names` of the path. */
  params?: z.ZodObject;
  /** Query parameters (handlers read them with `queryParam`, whose checks name the parameter). */
  query?: z.ZodObject;
  body?: ApiBody;
  responses: Record<number, ApiResponse>;
  /** An OpenAPI operation object given as is (formats' `apiRoutes`); replaces the generated one. */
  operation?: Record<string, unknown>;
  handler(ctx: Koa.Context, input: RouteInput<B>): Promise<void>;
}

/** Declares a route, inferring the body's type from a validated schema. */
export function route<S extends z.ZodType>(r: ApiRoute<z.output<S>> & { body: ApiBody & { schema: S; validate: true } }): ApiRoute;
export function route(r: ApiRoute<unknown>): ApiRoute;
export function route(r: ApiRoute<never>): ApiRoute {
  return r as ApiRoute;
}

/** The first issue as the 400 every body check gives: `<field>: <message>`, field `body` for the whole. */
export function issueError(issue: z.core.$ZodIssue): Error {
  const field = issue.path.map(String).join('.') || (issue.code === 'unrecognized_keys' ? issue.keys[0] : 'body');
  return badRequest(`${field}: ${issue.message}`, { field });
}

async function readBody(app: Stowage, ctx: Koa.Context, body: ApiBody | undefined): Promise<unknown> {
  const raw = await readJson(ctx, app.config.http.maxJsonBytes);
  if (!body?.validate) return raw;
  if (body.schema instanceof z.ZodObject && (!raw || typeof raw !== 'object' || Array.isArray(raw))) throw badRequest('body: expected a JSON object', { field: 'body' });
  const r = body.schema.safeParse(raw);
  if (!r.success) throw issueError(r.error.issues[0]);
  return r.data;
}

/** The koa middleware of one route: the declared privilege, then the handler (which reads the body when it is ready to). */
function middleware(app: Stowage, r: ApiRoute): Router.Middleware {
  return async (ctx) => {
    if (typeof r.access === 'object' && 'privilege' in r.access) await requireApp(app, ctx, r.access.privilege);
    await r.handler(ctx as Koa.Context, { body: () => readBody(app, ctx as Koa.Context, r.body) });
  };
}

/** A koa router serving the routes, in declaration order (the first match wins, as written). */
export function mountRoutes(app: Stowage, routes: readonly ApiRoute[]): Router {
  const router = new Router();
  for (const r of routes) router.register(r.path, [r.method], middleware(app, r), { name: r.operationId });
  return router;
}
