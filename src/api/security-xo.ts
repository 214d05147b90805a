import { badRequest } from '../errors.js';
import { actionXO, type Privilege } from '../security/permissions.js';
import type { RoleDef, SelectorDef } from '../security/security-store.js';
import type { ExternalUser } from '../security/security.js';
import type { UserRow } from '../security/users.js';

/** Nexus security API shapes (ApiUser, RoleXOResponse, ApiPrivilege*, ContentSelectorApiResponse) and body checks. */

export function field(name: string, message: string) {
  return badRequest(`${name}: ${message}`, { field: name });
}

/** The body as an object; anything else is a 400 on `body`. */
export function object(body: unknown): Record<string, unknown> {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw field('body', 'a JSON object is required');
  return body as Record<string, unknown>;
}

export function optString(body: Record<string, unknown>, name: string): string | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw field(name, 'must be a string');
  return v;
}

export function reqString(body: Record<string, unknown>, name: string): string {
  const v = optString(body, name);
  if (v === undefined || v === '') throw field(name, 'is required');
  return v;
}

export function stringList(body: Record<string, unknown>, name: string): string[] | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw field(name, 'must be a list of strings');
  return v as string[];
}

export const USER_STATUSES = ['active', 'locked', 'disabled', 'changepassword'] as const;

export function userXO(u: UserRow) {
  return {
    userId: u.user_id,
    firstName: u.first_name,
    lastName: u.last_name,
    emailAddress: u.email,
    source: 'default',
    status: u.status,
    readOnly: false,
    roles: u.roles,
    externalRoles: [] as string[],
  };
}

export function externalUserXO(u: ExternalUser, roles: string[]) {
  return {
    userId: u.userId,
    firstName: u.firstName,
    lastName: u.lastName,
    emailAddress: u.emailAddress,
    source: u.source,
    status: 'active',
    readOnly: true,
    roles,
    externalRoles: u.externalRoles,
  };
}

export function roleXO(r: RoleDef) {
  return { id: r.id, source: r.source, name: r.name, description: r.description, readOnly: r.readOnly, privileges: r.privileges, roles: r.roles };
}

export function privilegeXO(p: Privilege) {
  const base = { type: p.type, name: p.name, description: p.description, readOnly: p.readOnly };
  switch (p.type) {
    case 'application':
      return { ...base, domain: p.domain, actions: p.actions.map(actionXO) };
    case 'repository-view':
    case 'repository-admin':
      return { ...base, format: p.format, repository: p.repository, actions: p.actions.map(actionXO) };
    case 'repository-content-selector':
      return { ...base, format: p.format, repository: p.repository, contentSelector: p.contentSelector, actions: p.actions.map(actionXO) };
    case 'wildcard':
      return { ...base, pattern: p.pattern };
  }
}

/** What the audit log keeps of a privilege (its definition). */
export function privilegeAudit(p: Privilege) {
  const { readOnly: _r, ...rest } = privilegeXO(p);
  return rest;
}

export function selectorXO(s: SelectorDef) {
  return { name: s.name, type: s.type, description: s.description, expression: s.expression };
}
