import { z } from 'zod';
import type { ApiRoute, ApiResponse } from './route.js';
import { ErrorXO } from './schemas.js';

/**
 * The OpenAPI 3 document of the REST API, generated from the route declarations (their zod
 * schemas, summaries and privileges): a route cannot be served without being described, and a
 * format's repository section or endpoint appears as soon as the format is compiled in.
 */

type Json = Record<string, unknown>;

/** Routes and the path they are mounted under, relative to the document's server (`/service/rest`). */
export interface RouteGroup {
  prefix: string;
  routes: readonly ApiRoute[];
}

/** `zod` integers carry the safe-integer range as bounds; they say nothing to a reader. */
function tidy(node: unknown, refs: (name: string) => string): unknown {
  if (Array.isArray(node)) return node.map((n) => tidy(n, refs));
  if (!node || typeof node !== 'object') return node;
  const out: Json = {};
  for (const [k, v] of Object.entries(node)) {
    if ((k === 'minimum' && v === Number.MIN_SAFE_INTEGER) || (k === 'maximum' && v === Number.MAX_SAFE_INTEGER) || k === '$schema' || k === '$id') continue;
    if (k === '$ref' && typeof v === 'string') out[k] = refs(v.replace(/^#\/definitions\//, ''));
    else out[k] = tidy(v, refs);
  }
  return out;
}

class Components {
  readonly schemas: Record<string, Json> = {};

  /** The JSON Schema of `schema`; named sub-schemas (`.meta({ id })`) go to components and are referenced. */
  schema(schema: z.ZodType): Json {
    const json = z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'input', unrepresentable: 'any' }) as Json;
    const ref = (id: string) => `#/components/schemas/${id}`;
    const { definitions, ...top } = json as { definitions?: Record<string, Json> } & Json;
    for (const [id, def] of Object.entries(definitions ?? {})) this.add(id, tidy(def, ref) as Json);
    return tidy(top, ref) as Json;
  }

  private add(id: string, def: Json): void {
    const known = this.schemas[id];
    if (known && JSON.stringify(known) !== JSON.stringify(def)) throw new Error(`OpenAPI: two different schemas are named ${id}`);
    this.schemas[id] = def;
  }
}

const DEFAULTS: Record<string, ApiResponse> = {
  '401': { description: 'Authentication required (WWW-Authenticate: Basic)' },
  '403': { description: 'Not permitted' },
};

function responseObject(c: Components, r: ApiResponse): Json {
  if (!r.schema && !r.contentType) return { description: r.description };
  const schema = r.schema ? c.schema(r.schema) : { type: 'string' };
  return { description: r.description, content: { [r.contentType ?? 'application/json']: { schema } } };
}

function parameters(c: Components, route: ApiRoute): Json[] {
  const out: Json[] = [];
  const declared = route.params?.shape ?? {};
  for (const [, name] of route.path.matchAll(/:(\w+)/g)) {
    const { description, ...schema } = c.schema((declared[name] as z.ZodType | undefined) ?? z.string());
    out.push({ name, in: 'path', required: true, ...(description ? { description } : {}), schema });
  }
  for (const [name, s] of Object.entries(route.query?.shape ?? {})) {
    const { description, ...schema } = c.schema(s as z.ZodType);
    out.push({ name, in: 'query', required: !(s as z.ZodType).safeParse(undefined).success, ...(description ? { description } : {}), schema });
  }
  return out;
}

function operation(c: Components, route: ApiRoute): Json {
  const access = route.access;
  const requires = access === 'public' ? null : 'privilege' in access ? access.privilege : access.requires;
  const description = [requires && `Requires ${requires}.`, route.description].filter(Boolean).join(' ');
  const responses: Json = {};
  const all: Record<string, ApiResponse> = { ...route.responses };
  if (access !== 'public') for (const [status, r] of Object.entries(DEFAULTS)) all[status] ??= r;
  for (const [status, r] of Object.entries(all)) responses[status] = responseObject(c, r);
  const params = parameters(c, route);
  return {
    operationId: route.operationId,
    tags: route.tags,
    summary: route.summary,
    ...(description ? { description } : {}),
    ...(access === 'public' ? { security: [] } : {}),
    ...(params.length ? { parameters: params } : {}),
    ...(route.body
      ? {
          requestBody: {
            required: true,
            ...(route.body.description ? { description: route.body.description } : {}),
            content: { [route.body.contentType ?? 'application/json']: { schema: c.schema(route.body.schema) } },
          },
        }
      : {}),
    responses,
  };
}

/** A koa path (`/tasks/:id`) as an OpenAPI path template (`/tasks/{id}`). */
export function templatePath(koaPath: string): string {
  return koaPath.replace(/:(\w+)/g, '{$1}');
}

export function openApiDocument(groups: readonly RouteGroup[], version = '0.1.0'): Json {
  const c = new Components();
  c.schema(ErrorXO);
  const paths: Record<string, Json> = {};
  const ids = new Set<string>();
  for (const g of groups) {
    for (const route of g.routes) {
      if (ids.has(route.operationId)) throw new Error(`OpenAPI: operationId ${route.operationId} is declared twice`);
      ids.add(route.operationId);
      const p = g.prefix + templatePath(route.path);
      const method = route.method.toLowerCase();
      if (paths[p]?.[method]) throw new Error(`OpenAPI: ${route.method} ${p} is declared twice`);
      paths[p] = { ...paths[p], [method]: route.operation ? { operationId: route.operationId, tags: route.tags, ...route.operation } : operation(c, route) };
    }
  }
  return {
    openapi: '3.0.3',
    info: {
      title: 'Stowage REST API',
      version,
      description: 'Nexus Repository 3 compatible REST API. Lists page with continuationToken; `limit` (alias `pageSize`) sets the page size.',
    },
    servers: [{ url: '/service/rest' }],
    security: [{ basicAuth: [] }, { bearerAuth: [] }],
    paths,
    components: {
      securitySchemes: { basicAuth: { type: 'http', scheme: 'basic' }, bearerAuth: { type: 'http', scheme: 'bearer' } },
      schemas: c.schemas,
    },
  };
}
