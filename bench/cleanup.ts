/**
 * Cleanup benchmark (issue 15, "Performance"): a raw hosted repository of BENCH_CLEANUP_COMPONENTS
 * (100,000) components — BENCH_CLEANUP_COMPONENTS / 10 names of 10 versions each, one asset and
 * one blob row each, written in bulk (the set-up is not measured) — and a policy keeping the
 * newest version of each name by date: it deletes 90%. Measured, in-process, on SQLite and (with
 * STOWAGE_TEST_PG_URL) PostgreSQL: the full preview (totals over the whole selection plus one
 * page), the run (through the task, to the end: components and assets deleted, blob rows
 * reclaimed), and the process's peak RSS above its level before each phase.
 *
 * Targets: run < 60 s, memory growth < 200 MB, every selected blob reclaimed by the end of the run.
 * `npx tsc -p tsconfig.json && node dist/bench/cleanup.js`. Not a test.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { startServer, type TestServer } from '../test/helpers/stowage.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const COMPONENTS = Number(process.env.BENCH_CLEANUP_COMPONENTS ?? 100_000);
const VERSIONS = 10;
const log = (s: string) => process.stderr.write(`  · ${s}\n`);

async function populate(s: TestServer): Promise<number> {
  const repo = await s.repo('raw', 'hosted', { name: 'bench' });
  const store = (await s.app.blobStores.byName('default'))!;
  const db = s.app.db;
  const t0 = Date.now() - 90 * 86_400_000;
  const BATCH = 500;
  for (let start = 0; start < COMPONENTS; start += BATCH) {
    const n = Math.min(BATCH, COMPONENTS - start);
    await db.transaction(async (tx) => {
      const idx = Array.from({ length: n }, (_, k) => start + k);
      const blobs = await tx('blobs')
        .insert(
          idx.map((i) => ({
            store_id: store.id,
            sha256: createHash('sha256').update(`bench-${i}`).digest('hex'),
            sha1: '0'.repeat(40),
            md5: '0'.repeat(32),
            size: 1000,
            storage_key: `content/bench/${i}`,
            created_at: t0,
            touched_at: t0,
          })),
        )
        .returning('id');
      const comps = await tx('components')
        .insert(
          idx.map((i) => ({
            repository_id: repo.id,
            namespace: '',
            name: `pkg-${Math.floor(i / VERSIONS)}`,
            version: `1.0.${i % VERSIONS}`,
            attributes: '{}',
            created_at: t0 + i,
            updated_at: t0 + i,
          })),
        )
        .returning('id');
      await tx('assets').insert(
        idx.map((i, k) => ({
          repository_id: repo.id,
          path: `pkg-${Math.floor(i / VERSIONS)}/1.0.${i % VERSIONS}/file.bin`,
          component_id: Number(typeof comps[k] === 'object' ? comps[k].id : comps[k]),
          blob_id: Number(typeof blobs[k] === 'object' ? blobs[k].id : blobs[k]),
          content_type: 'application/octet-stream',
          kind: 'content',
          attributes: '{}',
          created_at: t0 + i,
          updated_at: t0 + i,
        })),
      );
    });
  }
  return repo.id;
}

/** Runs `fn`, sampling RSS every 50 ms; returns seconds and the peak growth in MB. */
async function measure<T>(fn: () => Promise<T>): Promise<{ value: T; seconds: number; peakMb: number }> {
  global.gc?.();
  const base = process.memoryUsage().rss;
  let peak = base;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
  const start = performance.now();
  try {
    const value = await fn();
    return { value, seconds: (performance.now() - start) / 1000, peakMb: (Math.max(peak, process.memoryUsage().rss) - base) / 2 ** 20 };
  } finally {
    clearInterval(timer);
  }
}

async function bench(db: 'sqlite' | 'postgres') {
  const s = await startServer({ db });
  try {
    log(`${db}: writing ${COMPONENTS} components`);
    await populate(s);
    const r = await s.fetch('/service/rest/v1/cleanup-policies', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'keep-1', format: 'raw', retain: 1, sortBy: 'date' }),
    });
    if (r.status !== 201) throw new Error(await r.text());
    const repo = await s.app.repositories.require('bench');
    await s.app.repositories.update('bench', { ...repo.config, cleanup: { policyNames: ['keep-1'] } });
    const policy = await s.app.cleanup.policies.require('keep-1');
    log(`${db}: preview`);
    const preview = await measure(() => s.app.cleanup.preview(policy, repo, null, 100));
    log(`${db}: run`);
    const t0 = performance.now();
    const ctx = {
      signal: new AbortController().signal,
      log: (l: string) => log(`${db}: +${((performance.now() - t0) / 1000).toFixed(1)} s ${l}`),
      progress: () => undefined,
      runId: 0,
    };
    const run = await measure(() => s.app.cleanup.run({ policyName: 'keep-1' }, ctx));
    const report = run.value[0];
    const left = Number((await s.app.db('components').where({ repository_id: repo.id }).count({ n: '*' }).first())!.n);
    const blobsLeft = Number((await s.app.db('blobs').count({ n: '*' }).first())!.n);
    return {
      db,
      components: COMPONENTS,
      selected: preview.value.totals.components,
      previewSeconds: preview.seconds,
      previewPeakMb: preview.peakMb,
      runSeconds: run.seconds,
      runPeakMb: run.peakMb,
      deleted: report.componentsDeleted,
      blobsReclaimed: report.blobsDeleted,
      left,
      blobsLeft,
    };
  } finally {
    await s.stop();
  }
}

const rows = [await bench('sqlite')];
if (process.env.STOWAGE_TEST_PG_URL) rows.push(await bench('postgres'));
console.log('| db | components | selected | preview s | preview MB | run s | run MB | deleted | blobs reclaimed | left |');
console.log('|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(
    `| ${r.db} | ${r.components} | ${r.selected} | ${r.previewSeconds.toFixed(1)} | ${r.previewPeakMb.toFixed(0)} | ${r.runSeconds.toFixed(1)} | ${r.runPeakMb.toFixed(0)} | ${r.deleted} | ${r.blobsReclaimed} | ${r.left} components, ${r.blobsLeft} blobs |`,
  );
}
mkdirSync(path.join(ROOT, 'bench/results'), { recursive: true });
writeFileSync(path.join(ROOT, 'bench/results', `cleanup-${Date.now()}.json`), JSON.stringify(rows, null, 2));
