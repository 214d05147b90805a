import Router from '@koa/router';
import type { Stowage } from '../stowage.js';
import { requireApp } from '../http/auth.js';

/** `/status` (readable), `/status/writable` (can write), `/status/check` (system checks, needs nx-metrics-all). */
export function statusRoutes(app: Stowage): Router {
  const r = new Router();
  r.get('/status', async (ctx) => {
    await app.db.raw('select 1');
    ctx.status = 200;
    ctx.body = '';
  });
  r.get('/status/writable', async (ctx) => {
    await app.db.raw('select 1');
    const stores = await app.blobStores.list();
    for (const s of stores) await (await app.blobStores.driver(s.id)).check();
    ctx.status = 200;
    ctx.body = '';
  });
  r.get('/status/check', async (ctx) => {
    await requireApp(app, ctx, 'nx-metrics-all');
    const checks: Record<string, { healthy: boolean; message: string | null; error: null; details: null; time: number; duration: number; timestamp: string }> = {};
    const run = async (name: string, f: () => Promise<string | null>) => {
      const t = Date.now();
      let healthy = true;
      let message: string | null = null;
      try {
        message = await f();
      } catch (e) {
        healthy = false;
        message = (e as Error).message;
      }
      checks[name] = { healthy, message, error: null, details: null, time: t, duration: Date.now() - t, timestamp: new Date(t).toISOString() };
    };
    await run('Database', async () => {
      await app.db.raw('select 1');
      return 'The database is reachable';
    });
    for (const s of await app.blobStores.list()) {
      await run(`Blob store ${s.name}`, async () => {
        await (await app.blobStores.driver(s.id)).check();
        return `Blob store ${s.name} is writable`;
      });
    }
    ctx.body = checks;
  });
  return r;
}
