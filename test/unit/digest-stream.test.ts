import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DigestStream, calibrate, splitFor, type DigestLimits } from '../../src/blob/digest-stream.js';
import type { DigestAlgorithm } from '../../src/blob/digest-set.js';
import { AppError } from '../../src/errors.js';

const hex = (algo: string, data: Buffer | string) => createHash(algo).update(data).digest('hex');

/** Pipes `chunks` through a DigestStream; resolves with it and the bytes that came out. */
async function run(chunks: Buffer[], limits?: DigestLimits, recut = false): Promise<{ digest: DigestStream; out: Buffer; sizes: number[] }> {
  const digest = new DigestStream(limits, recut);
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(chunks, { objectMode: false }),
    digest,
    new Writable({
      write(c: Buffer, _e, cb) {
        // Copied: re-cut buffers belong to the pool (this consumer never hands them back, but be strict).
        out.push(Buffer.from(c));
        cb();
      },
    }),
  );
  return { digest, out: Buffer.concat(out), sizes: out.map((b) => b.length) };
}

const code = (c: string) => (e: unknown) => {
  assert.ok(e instanceof AppError, `expected an AppError, got ${String(e)}`);
  assert.equal(e.code, c);
  return true;
};

describe('DigestStream', () => {
  it('computes sha256, sha1, md5 and size of a known input and passes bytes through unchanged', async () => {
    const { digest, out } = await run([Buffer.from('hello '), Buffer.from('world')]);
    assert.deepEqual(digest.digests(), {
      sha256: 'b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9',
      sha1: '2aae6c35c94fcfb415dbe95f408b9ce91ee846ed',
      md5: '5eb63bbbe01eeed093cb22bb8f5acdc3',
      size: 11,
    });
    assert.equal(out.toString(), 'hello world');
  });

  it('matches node:crypto on random multi-chunk input', async () => {
    const parts = [randomBytes(1), randomBytes(65_536), randomBytes(300_001), randomBytes(7)];
    const all = Buffer.concat(parts);
    const { digest, out } = await run(parts);
    assert.deepEqual(digest.digests(), { sha256: hex('sha256', all), sha1: hex('sha1', all), md5: hex('md5', all), size: all.length });
    assert.deepEqual(out, all);
    assert.equal(digest.size, all.length);
  });

  it('matches node:crypto on a multi-MiB body (large bodies may be hashed off the main thread)', async () => {
    const parts = Array.from({ length: 12 }, (_, i) => randomBytes(512 * 1024 + i * 4099));
    const all = Buffer.concat(parts);
    const { digest, out } = await run(parts, { expectedSize: all.length, maxSize: all.length });
    assert.deepEqual(digest.digests(), { sha256: hex('sha256', all), sha1: hex('sha1', all), md5: hex('md5', all), size: all.length });
    assert.ok(out.equals(all));
  });

  it('several large bodies hashed at once each get their own digests', async () => {
    const bodies = Array.from({ length: 4 }, (_, i) => [randomBytes(3 * 1024 * 1024 + i), randomBytes(1024 * 1024)]);
    const results = await Promise.all(bodies.map((parts) => run(parts)));
    results.forEach(({ digest }, i) => {
      const all = Buffer.concat(bodies[i]);
      assert.deepEqual(digest.digests(), { sha256: hex('sha256', all), sha1: hex('sha1', all), md5: hex('md5', all), size: all.length });
    });
  });

  it('large bodies: short and long against expectedSize, over maxSize', async () => {
    const MiB = 1024 * 1024;
    await assert.rejects(run([randomBytes(4 * MiB), randomBytes(MiB)], { expectedSize: 5 * MiB + 1 }), code('SIZE_INVALID'));
    await assert.rejects(run([randomBytes(4 * MiB), randomBytes(MiB + 1)], { expectedSize: 5 * MiB }), code('SIZE_INVALID'));
    await assert.rejects(run([randomBytes(4 * MiB), randomBytes(4 * MiB)], { maxSize: 6 * MiB }), code('PAYLOAD_TOO_LARGE'));
  });

  it('digests an empty body', async () => {
    const { digest } = await run([]);
    assert.deepEqual(digest.digests(), { sha256: hex('sha256', ''), sha1: hex('sha1', ''), md5: hex('md5', ''), size: 0 });
  });

  it('accepts a body of exactly expectedSize and of exactly maxSize', async () => {
    const body = randomBytes(1000);
    assert.equal((await run([body], { expectedSize: 1000 })).digest.digests().size, 1000);
    assert.equal((await run([body], { maxSize: 1000 })).digest.digests().size, 1000);
    assert.equal((await run([body], { expectedSize: 1000, maxSize: 1000 })).digest.digests().sha256, hex('sha256', body));
  });

  it('fails with SIZE_INVALID when the body is shorter than expectedSize', async () => {
    await assert.rejects(run([randomBytes(999)], { expectedSize: 1000 }), code('SIZE_INVALID'));
    await assert.rejects(run([], { expectedSize: 1 }), code('SIZE_INVALID'));
  });

  it('fails with SIZE_INVALID when the body is longer than expectedSize', async () => {
    await assert.rejects(run([randomBytes(600), randomBytes(401)], { expectedSize: 1000 }), code('SIZE_INVALID'));
    await assert.rejects(run([randomBytes(1)], { expectedSize: 0 }), code('SIZE_INVALID'));
  });

  it('fails with PAYLOAD_TOO_LARGE when the body exceeds maxSize', async () => {
    await assert.rejects(run([randomBytes(512), randomBytes(513)], { maxSize: 1024 }), code('PAYLOAD_TOO_LARGE'));
  });

  it('stops passing bytes on once a limit is exceeded', async () => {
    const digest = new DigestStream({ maxSize: 10 });
    const out: Buffer[] = [];
    await assert.rejects(
      pipeline(
        Readable.from([Buffer.alloc(6), Buffer.alloc(6), Buffer.alloc(6)], { objectMode: false }),
        digest,
        new Writable({
          write(c: Buffer, _e, cb) {
            out.push(c);
            cb();
          },
        }),
      ),
      code('PAYLOAD_TOO_LARGE'),
    );
    assert.ok(Buffer.concat(out).length <= 10);
  });

  it('refuses digests() before the end', () => {
    const digest = new DigestStream();
    digest.write(Buffer.from('abc'));
    assert.throws(() => digest.digests(), /before the stream ended/);
    digest.destroy();
  });

  it('re-cut: the same bytes and digests come out in 1 MiB buffers (the last one shorter); limits still apply', async () => {
    const MiB = 1024 * 1024;
    const chunks = Array.from({ length: 40 }, (_, i) => randomBytes(1 + ((i * 97_331) % 300_000)));
    const all = Buffer.concat(chunks);
    const { digest, out, sizes } = await run(chunks, { expectedSize: all.length }, true);
    assert.ok(out.equals(all));
    assert.equal(digest.digests().sha256, hex('sha256', all));
    assert.equal(digest.digests().md5, hex('md5', all));
    assert.ok(
      sizes.slice(0, -1).every((n) => n === MiB),
      `sizes ${sizes.join(',')}`,
    );
    assert.equal(sizes.at(-1), all.length % MiB || MiB);
    await assert.rejects(run([randomBytes(4 * MiB), randomBytes(4 * MiB)], { maxSize: 6 * MiB }, true), code('PAYLOAD_TOO_LARGE'));
    await assert.rejects(run([randomBytes(3 * MiB)], { expectedSize: 3 * MiB + 1 }, true), code('SIZE_INVALID'));
  });
});

describe('digests per format', () => {
  const BLAKE_ABC = 'bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319';
  // RFC 7693 / reference implementation: BLAKE2b-256 of the empty string.
  const BLAKE_EMPTY = '0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8';

  it('computes exactly the declared set, sha256 always', async () => {
    const data = Buffer.from('abc');
    for (const digests of [['sha256'], ['sha1'], ['sha256', 'sha1', 'sha512'], ['md5', 'blake2b256'], ['sha256', 'sha1', 'md5', 'sha512', 'blake2b256']] as const) {
      const { digest } = await run([data], { digests });
      const d = digest.digests();
      const want = new Set<string>(['sha256', ...digests]);
      assert.deepEqual(
        Object.keys(d)
          .filter((k) => k !== 'size')
          .sort(),
        [...want].sort(),
      );
      for (const a of want) assert.equal(d[a as 'sha256'], a === 'blake2b256' ? BLAKE_ABC : hex(a, data), a);
    }
  });

  it('BLAKE2b-256 and sha512 test vectors, and a multi-MiB body through the worker for every set', async () => {
    assert.equal((await run([Buffer.alloc(0)], { digests: ['blake2b256'] })).digest.digests().blake2b256, BLAKE_EMPTY);
    assert.equal(
      (await run([Buffer.from('abc')], { digests: ['sha512'] })).digest.digests().sha512,
      'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f',
    );
    const data = randomBytes(5 * 1024 * 1024 + 3);
    const { createBLAKE2b } = await import('hash-wasm');
    const blake = (await createBLAKE2b(256)).init().update(data).digest('hex');
    const chunks = Array.from({ length: Math.ceil(data.length / 65536) }, (_, i) => data.subarray(i * 65536, (i + 1) * 65536));
    const all = ['sha256', 'sha1', 'md5', 'sha512', 'blake2b256'] as const;
    const results = await Promise.all(
      ([['sha256'], ['sha256', 'sha1', 'md5'], ['sha256', 'sha1', 'sha512'], ['sha256', 'md5', 'blake2b256'], all] as DigestAlgorithm[][]).map((digests) =>
        run(chunks, { digests, expectedSize: data.length }),
      ),
    );
    for (const { digest } of results) {
      const d = digest.digests();
      for (const a of all) if (d[a] !== undefined) assert.equal(d[a], a === 'blake2b256' ? blake : hex(a, data), a);
    }
    assert.equal(results[4].digest.digests().blake2b256, blake);
  });

  it('the split between threads: every algorithm once, sha256 alone stays on the main thread, costly ones go to the worker', () => {
    const cost = calibrate();
    for (const a of ['sha256', 'sha1', 'md5', 'sha512'] as const) assert.ok(cost[a] > 0 && Number.isFinite(cost[a]), a);
    const sets: DigestAlgorithm[][] = [['sha256'], ['sha256', 'sha1', 'md5'], ['sha256', 'sha1', 'sha512'], ['sha256', 'md5', 'blake2b256'], ['sha256', 'sha1', 'md5', 'sha512']];
    for (const set of sets) {
      const { main, worker } = splitFor(set, cost);
      assert.deepEqual([...main, ...worker].sort(), [...set].sort());
    }
    // Costs as measured here (CPU-ns per MiB): sha256 a little faster than sha1 ~1 GB/s, md5 ~0.5, sha512 ~0.7, BLAKE2b ~0.33.
    const here = { sha256: 950, sha1: 1000, md5: 2000, sha512: 1400, blake2b256: 3000 };
    // Judged on fixed costs: measured ones swing on a loaded machine.
    assert.deepEqual(splitFor(['sha256'], here).worker, []);
    // sha256, sha1, md5: the slow md5 on the worker with one of the fast ones, the other on the main thread (which also moves the bytes).
    const raw = splitFor(['sha256', 'sha1', 'md5'], here);
    assert.ok(raw.worker.includes('md5') && raw.main.length === 1, JSON.stringify(raw));
    const pypi = splitFor(['sha256', 'md5', 'blake2b256'], here);
    assert.ok(pypi.worker.includes('blake2b256') && pypi.main.length > 0, JSON.stringify(pypi));
    const maven = splitFor(['sha256', 'sha1', 'md5', 'sha512'], here);
    const t = (as: DigestAlgorithm[]) => as.reduce((s, a) => s + here[a], 0);
    assert.ok(Math.max(2000 + t(maven.main), t(maven.worker)) <= 4000, JSON.stringify(maven));
  });
});
