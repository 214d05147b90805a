/**
 * An image with a 1 GiB layer (random bytes, incompressible, on disk, never in memory) pushed and
 * pulled with skopeo through a Stowage in its own process, while its resident memory is sampled
 * from /proc: the layer streams through, it is not buffered. The pulled layer's digest is checked.
 * SQLite only: what is under test is the blob path, which does not touch the database per byte.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomFillSync } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { ADMIN, ADMIN_PASSWORD, spawnServer, type ChildServer } from '../helpers/stowage.js';
import { skopeo } from '../helpers/oci.js';

const GiB = 1024 * 1024 * 1024;
const RSS_LIMIT = 350 * 1024 * 1024;

/** A ustar header for one regular file. */
function tarHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(512);
  const field = (offset: number, length: number, value: string) => h.write(value, offset, length, 'ascii');
  const octal = (n: number, width: number) => n.toString(8).padStart(width - 1, '0') + '\0';
  field(0, 100, name);
  field(100, 8, octal(0o644, 8));
  field(108, 8, octal(0, 8));
  field(116, 8, octal(0, 8));
  field(124, 12, octal(size, 12));
  field(136, 12, octal(Math.floor(Date.now() / 1000), 12));
  field(148, 8, '        ');
  field(156, 1, '0');
  field(257, 6, 'ustar\0');
  field(263, 2, '00');
  let sum = 0;
  for (const b of h) sum += b;
  field(148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
  return h;
}

async function writeBlob(dir: string, data: Buffer | string): Promise<{ digest: string; size: number }> {
  const buf = Buffer.from(data);
  const hex = createHash('sha256').update(buf).digest('hex');
  writeFileSync(path.join(dir, 'blobs', 'sha256', hex), buf);
  return { digest: `sha256:${hex}`, size: buf.length };
}

/**
 * An OCI layout whose one layer is an uncompressed tar holding `size` random bytes, written in
 * 1 MiB pieces and hashed while written (the digest is both the layer's and its diff ID).
 */
async function buildLargeImage(dir: string, size: number): Promise<{ layout: string; layer: string; layerSize: number }> {
  const layout = path.join(dir, 'large');
  mkdirSync(path.join(layout, 'blobs', 'sha256'), { recursive: true });
  const tmp = path.join(layout, 'layer.tmp');
  const out = createWriteStream(tmp);
  const hash = createHash('sha256');
  let layerSize = 0;
  const put = async (b: Buffer) => {
    hash.update(b);
    layerSize += b.length;
    if (!out.write(b)) await once(out, 'drain');
  };
  await put(tarHeader('big.bin', size));
  const piece = Buffer.alloc(1024 * 1024);
  for (let left = size; left > 0; left -= piece.length) {
    randomFillSync(piece);
    await put(left >= piece.length ? Buffer.from(piece) : piece.subarray(0, left));
  }
  const pad = (512 - (size % 512)) % 512;
  await put(Buffer.alloc(pad + 1024));
  out.end();
  await once(out, 'finish');
  const layerHex = hash.digest('hex');
  renameSync(tmp, path.join(layout, 'blobs', 'sha256', layerHex));
  const layer = `sha256:${layerHex}`;
  const config = await writeBlob(layout, JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [layer] } }));
  const manifest = await writeBlob(
    layout,
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer, size: layerSize }],
    }),
  );
  writeFileSync(path.join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(
    path.join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'latest' } }],
    }),
  );
  return { layout, layer, layerSize };
}

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Samples a process's VmRSS every 100 ms while `work` runs; the peak. */
async function peakRss<T>(pid: number, work: () => Promise<T>): Promise<{ result: T; peak: number; samples: number }> {
  let peak = rssOf(pid);
  let samples = 1;
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rssOf(pid));
      samples++;
    } catch {
      /* exited: the work fails on its own */
    }
  }, 100);
  try {
    return { result: await work(), peak, samples };
  } finally {
    clearInterval(timer);
  }
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file, { highWaterMark: 1 << 20 })) h.update(c as Buffer);
  return `sha256:${h.digest('hex')}`;
}

const mb = (n: number) => `${(n / 1024 / 1024).toFixed(0)} MB`;

describe('docker: an image with a 1 GiB layer', { timeout: 900_000 }, () => {
  let work: string;
  let server: ChildServer;
  let image: Awaited<ReturnType<typeof buildLargeImage>>;
  let host: string;

  before(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'stowage-docker-large-'));
    // The layout, the server's copy (and its upload session while it lasts) and the pulled copy.
    const fs = statfsSync(work);
    assert.ok(fs.bavail * fs.bsize > 5 * GiB, `need 5 GiB free under ${tmpdir()}, have ${mb(fs.bavail * fs.bsize)}`);
    image = await buildLargeImage(work, GiB);
    server = await spawnServer();
    host = server.url.slice('http://'.length);
    const r = await fetch(`${server.url}/service/rest/v1/repositories/docker/hosted`, {
      method: 'POST',
      headers: { Authorization: ADMIN, 'Content-Type': 'application/json' },
      body: JSON.stringify({
        name: 'big',
        online: true,
        storage: { blobStoreName: 'default', strictContentTypeValidation: true, writePolicy: 'ALLOW' },
        docker: { v1Enabled: false, forceBasicAuth: false },
      }),
    });
    assert.equal(r.status, 201, await r.text());
  });

  after(async () => {
    await server?.stop();
    if (server) rmSync(server.dataDir, { recursive: true, force: true });
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('pushes and pulls it with bounded server memory; the pulled layer has its digest', async (t) => {
    const pid = server.proc.pid!;
    const creds = `admin:${ADMIN_PASSWORD}`;
    const push = await peakRss(pid, () =>
      skopeo('copy', '--preserve-digests', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${image.layout}:latest`, `docker://${host}/big/app/large:v1`),
    );
    assert.ok(push.result.ok, push.result.stderr);
    assert.ok(push.peak < RSS_LIMIT, `server RSS during the push peaked at ${mb(push.peak)}`);

    const head = await fetch(`${server.url}/v2/big/app/large/blobs/${image.layer}`, { method: 'HEAD', headers: { Authorization: ADMIN } });
    assert.equal(head.status, 200);
    assert.equal(Number(head.headers.get('content-length')), image.layerSize);

    const out = path.join(work, 'pulled');
    const pull = await peakRss(pid, () =>
      skopeo(
        'copy',
        '--preserve-digests',
        '--dest-oci-accept-uncompressed-layers',
        '--src-tls-verify=false',
        '--src-creds',
        creds,
        `docker://${host}/big/app/large:v1`,
        `oci:${out}:v1`,
      ),
    );
    assert.ok(pull.result.ok, pull.result.stderr);
    assert.ok(pull.peak < RSS_LIMIT, `server RSS during the pull peaked at ${mb(pull.peak)}`);
    const pulled = path.join(out, 'blobs', 'sha256', image.layer.slice('sha256:'.length));
    assert.equal(statSync(pulled).size, image.layerSize);
    assert.equal(await sha256File(pulled), image.layer);
    t.diagnostic(`1 GiB layer: server RSS peak ${mb(push.peak)} during push (${push.samples} samples), ${mb(pull.peak)} during pull (${pull.samples} samples)`);
  });
});
