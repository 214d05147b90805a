export interface ComponentRow {
  id: number;
  repository_id: number;
  namespace: string;
  name: string;
  version: string;
  attributes: Record<string, unknown>;
  created_at: number;
  updated_at: number;
}

export type AssetKind = 'content' | 'metadata';

export interface AssetRow {
  id: number;
  repository_id: number;
  path: string;
  component_id: number | null;
  blob_id: number;
  content_type: string;
  kind: AssetKind;
  attributes: Record<string, unknown>;
  created_at: number;
  updated_at: number;
  last_downloaded: number | null;
  last_verified: number | null;
  /** User id of whoever uploaded it, and their address (null: fetched by a proxy, generated, or older than the record). */
  uploader?: string | null;
  uploader_ip?: string | null;
}

/** An asset joined with its blob's digests and size: what listings and search return. */
export interface AssetView extends AssetRow {
  size: number;
  sha256: string;
  /** Null when no format that stored these bytes needed it (and nothing computed it since). */
  sha1: string | null;
  md5: string | null;
  sha512: string | null;
  blake2b256: string | null;
  blob_created_at: number;
}

export interface ComponentInput {
  namespace?: string;
  name: string;
  version?: string;
  attributes?: Record<string, unknown>;
}

export interface AssetInput {
  repositoryId: number;
  path: string;
  blobId: number;
  contentType: string;
  kind?: AssetKind;
  component?: ComponentInput | null;
  attributes?: Record<string, unknown>;
  /** Proxy: the time the copy was fetched from upstream. */
  lastVerified?: number | null;
  /** Who sent the content (a client upload); absent: none, unless the content is unchanged. */
  uploader?: Uploader;
}

/** The user and client address of an upload. */
export interface Uploader {
  userId: string;
  ip: string;
}

export interface Page<T> {
  items: T[];
  continuationToken: string | null;
}

export interface DirEntry {
  name: string;
  /** Full path without leading slash; directories end with '/'. */
  path: string;
  directory: boolean;
  asset?: AssetView;
}
