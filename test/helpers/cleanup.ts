import assert from 'node:assert/strict';
import type { TestServer } from './stowage.js';

export const DAY = 86_400_000;

export interface PreviewItem {
  id: string;
  repository: string;
  group: string | null;
  name: string;
  version: string | null;
  assetCount: number;
  bytes: number;
}
export interface Preview {
  items: PreviewItem[];
  continuationToken: string | null;
  totals: { components: number; assets: number; bytes: number };
}

export async function json<T = unknown>(s: TestServer, p: string, init: RequestInit & { auth?: string | null } = {}): Promise<{ status: number; body: T }> {
  const headers = new Headers(init.headers);
  if (init.body !== undefined && !headers.has('Content-Type')) headers.set('Content-Type', 'application/json');
  const r = await s.fetch(p, { ...init, headers });
  const text = await r.text();
  return { status: r.status, body: (text ? JSON.parse(text) : null) as T };
}

/** Creates a policy through the REST API (asserting 201). */
export async function createPolicy(s: TestServer, body: Record<string, unknown>): Promise<void> {
  const r = await json(s, '/service/rest/v1/cleanup-policies', { method: 'POST', body: JSON.stringify(body) });
  assert.equal(r.status, 201, JSON.stringify(r.body));
}

/** Every page of a policy's preview of a repository. */
export async function previewAll(s: TestServer, policy: string, repository: string, limit = 2): Promise<Preview> {
  const items: PreviewItem[] = [];
  let token: string | null = null;
  let totals: Preview['totals'] | undefined;
  do {
    const q = new URLSearchParams({ repository, limit: String(limit) });
    if (token) q.set('continuationToken', token);
    const r = await json<Preview>(s, `/service/rest/v1/cleanup-policies/${policy}/preview?${q}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    items.push(...r.body.items);
    if (totals) assert.deepEqual(r.body.totals, totals, 'every page reports the same totals');
    totals = r.body.totals;
    token = r.body.continuationToken;
  } while (token);
  return { items, continuationToken: null, totals: totals! };
}

/** "Run now" of a policy through `POST /cleanup-policies/{name}/run`; waits for the run and returns its result, message and log. */
export async function runPolicy(s: TestServer, policy: string, repository?: string): Promise<{ result: string; message: string; log: string }> {
  const r = await json<{ taskId: string; runId: string }>(s, `/service/rest/v1/cleanup-policies/${policy}/run${repository ? `?repository=${repository}` : ''}`, { method: 'POST' });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const { taskId, runId } = r.body;
  for (let i = 0; i < 1200; i++) {
    const runs = await json<{ items: Array<{ id: string; result: string; message: string | null }> }>(s, `/service/rest/v1/tasks/${taskId}/runs?limit=50`);
    const run = runs.body.items.find((x) => x.id === runId);
    if (run && run.result !== 'RUNNING') {
      const log = await (await s.fetch(`/service/rest/v1/tasks/${taskId}/runs/${runId}/log`)).text();
      return { result: run.result, message: run.message ?? '', log };
    }
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`cleanup run of ${policy} did not finish`);
}

/** Moves cleanup's clock `days` days ahead of real time. */
export function advance(s: TestServer, days: number): void {
  s.app.cleanup.clock = () => Date.now() + days * DAY;
}

export const label = (i: { group: string | null; name: string; version: string | null }) => [i.group, i.name, i.version].filter(Boolean).join(':');

/** The message of an error body: Nexus's validation list (`[{id, message}]`) or `{message}`. */
export function errorMessage(body: unknown): string {
  if (Array.isArray(body)) return String((body[0] as { message: string }).message);
  return String((body as { message: string }).message);
}
