import type { Readable } from 'node:stream';
import type { AssetRow, ComponentInput, AssetKind, Uploader } from '../content/types.js';
import type { BlobRow } from '../blob/blob-service.js';
import type { ByteRange } from '../blob/driver.js';

export type RepositoryType = 'hosted' | 'proxy' | 'group';
export type WritePolicy = 'ALLOW' | 'ALLOW_ONCE' | 'DENY';

/** Nexus-shaped repository configuration (what the REST API reads and writes). */
export interface RepositoryConfig {
  name: string;
  format: string;
  type: RepositoryType;
  online: boolean;
  storage: { blobStoreName: string; strictContentTypeValidation: boolean; writePolicy?: WritePolicy };
  cleanup?: { policyNames: string[] } | null;
  proxy?: { remoteUrl: string; contentMaxAge: number; metadataMaxAge: number };
  negativeCache?: { enabled: boolean; timeToLive: number };
  httpClient?: {
    blocked: boolean;
    autoBlock: boolean;
    connection?: {
      retries?: number | null;
      userAgentSuffix?: string | null;
      timeout?: number | null;
      enableCircularRedirects?: boolean;
      enableCookies?: boolean;
      useTrustStore?: boolean;
    } | null;
    authentication?: {
      type: 'username' | 'bearerToken' | 'ntlm';
      username?: string | null;
      password?: string | null;
      bearerToken?: string | null;
      ntlmHost?: string | null;
      ntlmDomain?: string | null;
    } | null;
  };
  group?: { memberNames: string[]; writableMember?: string | null };
  /** Format sections (e.g. `raw: { contentDisposition }`) keyed by their Nexus name. */
  [section: string]: unknown;
}

export type ContentAction = 'browse' | 'read' | 'edit' | 'add' | 'delete';

/** Content served from some repository: the asset, its blob, and a way to open the bytes. */
export interface Content {
  asset: AssetRow;
  blob: BlobRow;
  /** The repository that holds the asset (a member, when read through a group). */
  repositoryName: string;
  open(range?: ByteRange): Promise<Readable>;
  /** The whole content, when it is small and already in memory (sent as one buffer, no stream). */
  bytes?: Buffer;
  /**
   * Set while the bytes are still arriving from upstream (a proxy's first fetch, streamed to
   * every waiting client while it is stored). `blob` has no digests yet and `asset` no row;
   * `size` is the length upstream announced (null: unknown, the response is sent chunked);
   * `stored` settles with the stored content once the body is complete and committed.
   */
  pending?: { size: number | null; stored: Promise<Content> };
}

/** How a read reaches upstream (proxies): the path to ask for when it differs from the stored path. */
export interface GetOptions {
  /** Path upstream (passed to the format's upstreamUrl hook); default: the stored path. */
  upstreamPath?: string;
  /** Groups the read already passed through (the group walk's cycle guard). */
  groupTrail?: string[];
}

export interface PutOptions {
  contentType: string;
  kind?: AssetKind;
  component?: ComponentInput | null;
  attributes?: Record<string, unknown>;
  /** Declared body size (Content-Length): a body of another size is refused. */
  expectedSize?: number;
  maxSize?: number;
  expected?: { sha256?: string; sha1?: string; md5?: string };
  /** What makes the write (default `client`: subject to the hosted write policy). */
  source?: import('./unit-of-work.js').ChangeSource;
  /** Who sent it (set from the AccessCheck of a client upload). */
  uploader?: Uploader;
  /** Replaceable under ALLOW_ONCE (see `PutAsset.mutable`). */
  mutable?: boolean;
}

export interface PutResult {
  asset: AssetRow;
  blob: BlobRow;
  created: boolean;
}

/** The principal's permission, as seen by repository code (for edit-on-overwrite). */
export interface AccessCheck {
  require(action: ContentAction): Promise<void>;
  /** The user and address of the request, recorded as the uploader of what it stores. */
  uploader?: Uploader;
}
