import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DigestStream, type DigestLimits } from '../../src/blob/digest-stream.js';
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
