/**
 * Worker thread that hashes chunks of many concurrent streams for the main thread, so the
 * digests of one upload are computed on two cores at once. The bytes arrive in slots of a
 * fixed set of buffers the main thread owns, transferred here and back (never cloned, never
 * allocated per message): each goes back with the acknowledgement as soon as it is hashed.
 */
import { parentPort } from 'node:worker_threads';
import { createHash, type Hash } from 'node:crypto';

type Msg =
  | { op: 'start'; id: number; algorithms: string[] }
  | { op: 'data'; id: number; buffer: ArrayBuffer; length: number }
  | { op: 'end'; id: number }
  | { op: 'abort'; id: number };

const streams = new Map<number, { names: string[]; hashes: Hash[] }>();

parentPort!.on('message', (m: Msg) => {
  switch (m.op) {
    case 'start':
      streams.set(m.id, { names: m.algorithms, hashes: m.algorithms.map((a) => createHash(a)) });
      break;
    case 'data': {
      const s = streams.get(m.id);
      if (s) {
        const view = new Uint8Array(m.buffer, 0, m.length);
        for (const h of s.hashes) h.update(view);
      }
      // Always hand the buffer back, even for an aborted stream.
      parentPort!.postMessage({ op: 'ack', id: m.id, buffer: m.buffer }, [m.buffer]);
      break;
    }
    case 'end': {
      const s = streams.get(m.id);
      const digests: Record<string, string> = {};
      s?.hashes.forEach((h, i) => (digests[s.names[i]] = h.digest('hex')));
      streams.delete(m.id);
      parentPort!.postMessage({ op: 'done', id: m.id, digests });
      break;
    }
    case 'abort':
      streams.delete(m.id);
      break;
  }
});
