import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gzipSync } from 'node:zlib';
import { contentTypeGuard, contentTypeMismatch, expectedType } from '../../src/repository/content-type-guard.js';

const HTML = Buffer.from('<!DOCTYPE html>\n<html><head><title>Login</title></head></html>');

describe('strict content type validation', () => {
  it('knows which names promise a checkable type', () => {
    assert.equal(expectedType('org/x/1.0/x-1.0.jar'), 'application/java-archive');
    assert.equal(expectedType('pkg/-/pkg-1.0.0.tgz'), 'application/gzip');
    assert.equal(expectedType('a/b.whl'), 'application/zip');
    assert.equal(expectedType('x.pom'), 'application/xml');
    assert.equal(expectedType('repodata/primary.xml.gz'), 'application/gzip');
    assert.equal(expectedType('README.txt'), null);
    assert.equal(expectedType('v2/-/blobs/sha256:abc'), null);
    assert.equal(expectedType('no-extension'), null);
  });

  it('accepts bytes that fit and names the mismatch otherwise', () => {
    assert.equal(contentTypeMismatch('a.jar', Buffer.from('PK\x03\x04....', 'latin1')), null);
    assert.equal(contentTypeMismatch('a.tgz', gzipSync('x')), null);
    assert.equal(contentTypeMismatch('a.json', Buffer.from('\ufeff  [1,2]')), null);
    assert.equal(contentTypeMismatch('a.xml', Buffer.from('\n<?xml version="1.0"?><a/>')), null);
    assert.equal(contentTypeMismatch('a.png', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), null);
    assert.equal(contentTypeMismatch('a.jar', Buffer.alloc(0)), null, 'empty bodies pass');
    assert.equal(contentTypeMismatch('a.jar', HTML), 'Detected content type [text/html], but expected [application/java-archive]: a.jar');
    assert.match(contentTypeMismatch('a.json', HTML)!, /\[text\/html\], but expected \[application\/json\]/);
    assert.match(contentTypeMismatch('a.tgz', Buffer.from('PK\x03\x04', 'latin1'))!, /\[application\/zip\], but expected \[application\/gzip\]/);
    assert.match(contentTypeMismatch('a.xml', Buffer.from('{"a":1}'))!, /\[application\/json\], but expected \[application\/xml\]/);
    assert.match(contentTypeMismatch('a.pdf', Buffer.from([0, 1, 2, 3]))!, /\[application\/octet-stream\]/);
  });

  const run = async (name: string, chunks: Buffer[], drain = false) => {
    const guard = contentTypeGuard(name, { drain });
    assert.ok(guard);
    const out: Buffer[] = [];
    let read = 0;
    const source = Readable.from(
      (function* () {
        for (const c of chunks) {
          read += c.length;
          yield c;
        }
      })(),
    );
    try {
      await pipeline(source, guard, async function* (s) {
        for await (const c of s) out.push(c as Buffer);
      });
      return { ok: true, out: Buffer.concat(out), read };
    } catch (e) {
      return { ok: false, error: (e as Error).message, out: Buffer.concat(out), read };
    }
  };

  it('passes every byte through unchanged when the head fits, whatever the chunking', async () => {
    const body = Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), Buffer.alloc(5000, 7)]);
    for (const size of [1, 3, 511, 512, 513, 5004]) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < body.length; i += size) chunks.push(body.subarray(i, i + size));
      const r = await run('a.zip', chunks);
      assert.ok(r.ok, `${size}: ${r.error}`);
      assert.ok(r.out.equals(body), `chunks of ${size}`);
    }
    const small = await run('a.zip', [Buffer.from('PK\x03\x04', 'latin1')]);
    assert.ok(small.ok && small.out.length === 4, 'a body shorter than the head is judged at its end');
  });

  it('passes nothing on when refused; drains the rest first when asked', async () => {
    const body = [HTML, Buffer.alloc(600), Buffer.alloc(100_000)];
    const now = await run('a.jar', body);
    assert.equal(now.ok, false);
    assert.match(now.error!, /expected \[application\/java-archive\]/);
    assert.equal(now.out.length, 0);
    const drained = await run('a.jar', body, true);
    assert.equal(drained.ok, false);
    assert.equal(drained.out.length, 0);
    assert.equal(drained.read, HTML.length + 100_600, 'the whole body was read before failing');
  });

  it('adds no stage for names it cannot check', () => {
    assert.equal(contentTypeGuard('notes.txt'), null);
  });
});
