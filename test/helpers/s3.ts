import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import S3rver from 's3rver';

export interface S3Server {
  /** http://127.0.0.1:<port> */
  endpoint: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Directory where s3rver keeps buckets and multipart uploads. */
  directory: string;
  stop(): Promise<void>;
}

/**
 * Starts a real S3-protocol server (s3rver) on 127.0.0.1 and a free port, backed by a fresh temp
 * directory, with one empty bucket. `stop()` shuts it down and removes the directory.
 */
export async function startS3(): Promise<S3Server> {
  const directory = await mkdtemp(path.join(tmpdir(), 'stowage-s3rver-'));
  const bucket = 'stowage-test';
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: [{ name: bucket }],
  });
  let address;
  try {
    address = await server.run();
  } catch (e) {
    await rm(directory, { recursive: true, force: true });
    throw e;
  }
  let stopped = false;
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    bucket,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    directory,
    async stop() {
      if (stopped) return;
      stopped = true;
      const closing = server.close();
      // close() waits for open keep-alive sockets; end them so the test process can exit.
      server.httpServer?.closeAllConnections();
      await closing;
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/** Creates an S3 blob store `name` on `s3` through the REST API (Nexus's JSON), under `prefix`. */
export async function createS3BlobStore(
  fetchApi: (p: string, init?: RequestInit) => Promise<Response>,
  s3: S3Server,
  name: string,
  bucket: Record<string, unknown> = {},
): Promise<void> {
  const res = await fetchApi('/service/rest/v1/blobstores/s3', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      name,
      bucketConfiguration: {
        bucket: { region: 'us-east-1', name: s3.bucket, ...bucket },
        bucketSecurity: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
        advancedBucketConnection: { endpoint: s3.endpoint, forcePathStyle: true },
      },
    }),
  });
  if (res.status !== 201) throw new Error(`creating S3 blob store ${name}: ${res.status} ${await res.text()}`);
}
