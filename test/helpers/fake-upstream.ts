import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** What a fake upstream answers for one request path (null: 404). */
export type Answer = { status: number; type: string; body: Buffer | string; headers?: Record<string, string> } | null;

/**
 * A tiny registry under the test's control: `answer` decides every response (it may change
 * between requests, e.g. a portal page first and the real document once "recovered"). Counts
 * requests per path.
 */
export async function fakeUpstream(answer: (path: string) => Answer) {
  const hits = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const p = decodeURIComponent(new URL(req.url!, 'http://x').pathname);
    hits.set(p, (hits.get(p) ?? 0) + 1);
    req.resume();
    const a = answer(p);
    if (!a) {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end('{"error":"not found"}');
      return;
    }
    res.writeHead(a.status, { 'Content-Type': a.type, ...(a.headers ?? {}) });
    res.end(a.body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    hits,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
