/**
 * Worker thread that hashes chunks of many concurrent streams for the main thread, so the
 * digests of one upload are computed on two cores at once. Messages are tagged by stream id.
 */
import { parentPort } from 'node:worker_threads';
import { createHash, type Hash } from 'node:crypto';

type Msg =
  | { op: 'start'; id: number; algorithms: string[] }
  | { op: 'data'; id: number; chunk: Uint8Array }
  | { op: 'end'; id: number }
  | { op: 'abort'; id: number };

const streams = new Map<number, Hash[]>();
const algos = new Map<number, string[]>();

parentPort!.on('message', (m: Msg) => {
  switch (m.op) {
    case 'start':
      streams.set(m.id, m.algorithms.map((a) => createHash(a)));
      algos.set(m.id, m.algorithms);
      break;
    case 'data': {
      const hs = streams.get(m.id);
      if (hs) for (const h of hs) h.update(m.chunk);
      parentPort!.postMessage({ op: 'ack', id: m.id, bytes: m.chunk.byteLength });
      break;
    }
    case 'end': {
      const hs = streams.get(m.id) ?? [];
      const names = algos.get(m.id) ?? [];
      const digests: Record<string, string> = {};
      hs.forEach((h, i) => (digests[names[i]] = h.digest('hex')));
      streams.delete(m.id);
      algos.delete(m.id);
      parentPort!.postMessage({ op: 'done', id: m.id, digests });
      break;
    }
    case 'abort':
      streams.delete(m.id);
      algos.delete(m.id);
      break;
  }
});
