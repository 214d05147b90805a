import type { Db } from '../db/db.js';
import type { Stowage } from '../stowage.js';

/** Upstream fetching, single-flight, negative cache and auto-block (being written). */
export class ProxyService {
  constructor(
    readonly db: Db,
    readonly app: Stowage,
  ) {}
  async start(): Promise<void> {}
}
