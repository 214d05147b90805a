#!/usr/bin/env node
// Heap settings apply from here on; loading the server's modules is what grew the heap, so they
// are imported only now (dynamically: static imports would load before this module's body runs).
import { optimizingCompilerMayRun, youngGenerationMayGrow } from './heap-settings.js';
import { releaseFreeMemory } from './malloc-native.js';
import v8 from 'node:v8';
import type { Config } from './config/config.js';

const { ConfigError, loadConfig } = await import('./config/config.js');
const { Stowage } = await import('./stowage.js');
const { createMainApp, listen } = await import('./http/server.js');
const { migrate, openDb, withStartupLock } = await import('./db/db.js');
const { sendfileStatus } = await import('./http/sendfile-native.js');
// The composition root: the one place where the core meets the formats.
const { formats } = await import('../formats/index.js');

const USAGE = `Usage: stowage <command>
  serve                              start the server (default)
  migrate                            run database migrations and exit
  admin reset-password <user> <pw>   set a local user's password`;

/**
 * Every socket read makes a fresh 64 KiB ArrayBuffer, counted as external memory until the GC
 * sweeps it. Swept concurrently (V8's default), on a machine whose cores are busy with the
 * upload itself the sweeping lags, the count passes V8's 64 MB external-memory step, and a full
 * GC follows every 150–250 ms (about 40 per GiB pushed, 1–2 CPU-s). Swept within each scavenge
 * instead, fewer pile up: 17–39 full GCs instead of 54–108 over the same docker bench run
 * (`BENCH_RUNS=2 BENCH_NODE_ARGS=--trace-gc`; noisy on a shared machine).
 */
v8.setFlagsFromString('--no-concurrent-array-buffer-sweeping');

async function serve(config: Config): Promise<void> {
  const app = await Stowage.open(config, formats);
  const main = await listen(createMainApp(app), config.http.port, config.http.host).catch(async (e: NodeJS.ErrnoException) => {
    await app.close();
    // The usual start failure of a configuration, not a crash: one line naming the setting.
    const why = e.code === 'EADDRINUSE' ? 'is already in use' : e.code === 'EACCES' ? 'needs privileges this process lacks' : null;
    if (why) throw new ConfigError(`Invalid setting STOWAGE_HTTP_PORT (http.port): port ${config.http.port} ${why}`);
    throw e;
  });
  await app.listeners.start(config.http.host);
  await app.proxy.start?.();
  app.tasks.start();
  youngGenerationMayGrow();
  optimizingCompilerMayRun();
  releaseFreeMemory();
  app.log.info(`Stowage listening on ${main.url} (data: ${config.dataDir})`);
  const sendfile = sendfileStatus();
  if (sendfile.active) app.log.info('Stored files are sent with sendfile(2)');
  else app.log.info(`Stored files are sent from JavaScript (${sendfile.reason})`);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.log.info(`${signal}: draining in-flight requests`);
    await Promise.all([main.close(config.http.shutdownGraceSeconds * 1000), app.listeners.close(config.http.shutdownGraceSeconds * 1000)]);
    await app.close();
    app.log.info('Stopped');
    app.log.flush();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

async function main(argv: string[]): Promise<number> {
  const [cmd = 'serve', ...args] = argv;
  let config: Config;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`stowage: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  switch (cmd) {
    case 'serve':
      await serve(config);
      return -1;
    case 'migrate': {
      const db = openDb(config.db, config.dataDir);
      try {
        const applied = await withStartupLock(db, () => migrate(db));
        process.stdout.write(applied.length ? `Applied: ${applied.join(', ')}\n` : 'Database is up to date\n');
      } finally {
        await db.destroy();
      }
      return 0;
    }
    case 'admin': {
      if (args[0] === 'reset-password' && args[1] && args[2]) {
        const app = await Stowage.open(config, formats);
        try {
          await app.security.users.setPassword(args[1], args[2]);
          process.stdout.write(`Password of '${args[1]}' changed\n`);
        } finally {
          await app.close();
        }
        return 0;
      }
      process.stderr.write(USAGE + '\n');
      return 2;
    }
    default:
      process.stderr.write(USAGE + '\n');
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (e) => {
    if (e instanceof ConfigError) {
      process.stderr.write(`stowage: ${e.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`stowage: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
