import { z } from 'zod';
import type { Stowage } from '../stowage.js';
import { route, type ApiRoute } from './route.js';
import { bool, nstr, ok } from './schemas.js';

const CheckXO = z.record(z.string(), z.object({ healthy: bool, message: nstr, error: z.null(), details: z.null(), time: z.int(), duration: z.int(), timestamp: z.string() }));

async function firstLow(app: Stowage, stores: Array<{ id: number; name: string }>): Promise<string | null> {
  for (const s of stores) {
    const low = await app.blobs.lowSpace(s.id);
    if (low) return `Blob store ${s.name} is not writable: ${low}`;
  }
  return null;
}

/** `/status` (readable), `/status/writable` (can write), `/status/check` (system checks, needs nx-metrics-all). */
export function statusRoutes(app: Stowage): ApiRoute[] {
  const tags = ['Status'];
  const unavailable = { description: 'Unavailable' };
  const status = route({
    method: 'GET',
    path: '/status',
    operationId: 'isAvailable',
    tags,
    summary: 'Health check: the node can serve reads',
    access: 'public',
    responses: { 200: { description: 'Available' }, 503: unavailable },
    handler: async (ctx) => {
      await app.db.raw('select 1');
      ctx.status = 200;
      ctx.body = '';
    },
  });
  const writable = route({
    method: 'GET',
    path: '/status/writable',
    operationId: 'isWritable',
    tags,
    summary: 'Health check: the node can serve writes',
    access: 'public',
    responses: { 200: { description: 'Writable' }, 503: { description: 'Unavailable (the reason as text/plain)', contentType: 'text/plain' } },
    handler: async (ctx) => {
      await app.db.raw('select 1');
      const stores = await app.blobStores.list();
      for (const s of stores) await (await app.blobStores.driver(s.id)).check();
      // Nearly full is not writable: uploads are refused (507) below the threshold.
      const low = (await app.blobs.lowSpace()) ?? (await firstLow(app, stores));
      if (low) {
        ctx.status = 503;
        ctx.set('Content-Type', 'text/plain; charset=utf-8');
        ctx.body = low + '\n';
        return;
      }
      ctx.status = 200;
      ctx.body = '';
    },
  });
  const check = route({
    method: 'GET',
    path: '/status/check',
    operationId: 'getSystemStatusChecks',
    tags,
    summary: 'System checks',
    access: { privilege: 'nx-metrics-all' },
    responses: { 200: ok(CheckXO) },
    handler: async (ctx) => {
      const checks: Record<string, { healthy: boolean; message: string | null; error: null; details: null; time: number; duration: number; timestamp: string }> = {};
      const run = async (name: string, f: () => Promise<string | null>) => {
        const t = Date.now();
        let healthy = true;
        let message: string | null;
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
      await run('Free space', async () => {
        const low = await app.blobs.lowSpace();
        if (low) throw new Error(low);
        return 'The data directory has enough free space';
      });
      for (const s of await app.blobStores.list()) {
        await run(`Blob store ${s.name}`, async () => {
          await (await app.blobStores.driver(s.id)).check();
          const low = await app.blobs.lowSpace(s.id);
          if (low) throw new Error(`Blob store ${s.name} is not writable: ${low}`);
          return `Blob store ${s.name} is writable`;
        });
      }
      ctx.body = checks;
    },
  });
  return [status, writable, check];
}
