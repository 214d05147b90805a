import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MANIFEST_ACCEPT, isMetadata, parseBearerChallenge, upstreamUrl } from '../../formats/docker/proxy.js';

describe('docker proxy hooks', () => {
  it('tag manifests and tag lists are metadata; digests and blobs are content', () => {
    assert.equal(isMetadata('v2/app/hello/manifests/v1'), true);
    assert.equal(isMetadata('v2/app/hello/tags/list'), true);
    assert.equal(isMetadata(`v2/app/hello/manifests/sha256:${'a'.repeat(64)}`), false);
    assert.equal(isMetadata(`v2/-/blobs/sha256:${'a'.repeat(64)}`), false);
  });

  it('prefixes library/ for single-name images on Docker Hub only', () => {
    assert.equal(upstreamUrl('https://registry-1.docker.io', 'v2/alpine/manifests/3'), 'https://registry-1.docker.io/v2/library/alpine/manifests/3');
    assert.equal(upstreamUrl('https://registry-1.docker.io/', 'v2/bitnami/redis/manifests/7'), 'https://registry-1.docker.io/v2/bitnami/redis/manifests/7');
    assert.equal(upstreamUrl('http://127.0.0.1:5000', 'v2/alpine/blobs/sha256:ab'), 'http://127.0.0.1:5000/v2/alpine/blobs/sha256:ab');
  });

  it('parses a bearer challenge', () => {
    assert.deepEqual(parseBearerChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"'), {
      realm: 'https://auth.docker.io/token',
      service: 'registry.docker.io',
      scope: 'repository:library/alpine:pull',
    });
    assert.equal(parseBearerChallenge('Basic realm="x"'), null);
  });

  it('accepts every manifest media type', () => {
    for (const t of [
      'application/vnd.oci.image.index.v1+json',
      'application/vnd.docker.distribution.manifest.v2+json',
      'application/vnd.docker.distribution.manifest.list.v2+json',
    ]) {
      assert.ok(MANIFEST_ACCEPT.includes(t));
    }
  });
});
