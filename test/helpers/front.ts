import http from 'node:http';
import type net from 'node:net';

/** A loopback HTTP front forwarding every request to `target` unless `intercept` answered it. */
export interface Forwarder {
  url: string;
  close(): Promise<void>;
}

/**
 * Starts a front: `intercept` sees each request first (it may rewrite headers, record it, or
 * answer itself and return true); anything it leaves is forwarded to `target` as is.
 */
export async function startForwarder(target: string, intercept: (req: http.IncomingMessage, res: http.ServerResponse) => boolean = () => false): Promise<Forwarder> {
  const t = new URL(target);
  const server = http.createServer((req, res) => {
    if (intercept(req, res)) return;
    const up = http.request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
