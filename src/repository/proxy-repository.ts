import { AppError } from '../errors.js';
import { Repository } from './repository.js';
import type { Content } from './types.js';

export class ProxyRepository extends Repository {
  async get(path: string): Promise<Content | null> {
    const local = await this.local(path);
    if (local) return local;
    throw new AppError('BAD_GATEWAY', 'proxy not implemented yet');
  }
}
