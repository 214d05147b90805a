import { z } from 'zod';
import { PRIVILEGE_TYPES } from '../security/permissions.js';
import { bool, int, str, strList } from './schemas.js';

/** Nexus security API shapes (users, roles, privileges, content selectors, realms, LDAP) for the OpenAPI document. */

const USER_STATUS = z.enum(['active', 'locked', 'disabled', 'changepassword']);

export const ApiUser = z
  .object({
    userId: str,
    firstName: str.optional(),
    lastName: str.optional(),
    emailAddress: str.optional(),
    source: str.optional().describe('`default` for local users; `LDAP`… for external ones'),
    status: USER_STATUS.optional(),
    readOnly: bool.optional().describe('True for external users (only their roles can change)'),
    roles: strList.optional().describe('Local roles (for external users: roles mapped here)'),
    externalRoles: strList.optional().describe('Roles (groups) the external source gives; read-only'),
  })
  .meta({ id: 'ApiUser' });

export const ApiCreateUser = z
  .object({
    userId: str,
    firstName: str.optional(),
    lastName: str.optional(),
    emailAddress: str.optional(),
    password: str.meta({ writeOnly: true }),
    status: USER_STATUS.optional(),
    roles: strList.optional(),
  })
  .meta({ id: 'ApiCreateUser' });

export const ApiUserSource = z.object({ id: str, name: str }).meta({ id: 'ApiUserSource' });

export const RoleXORequest = z
  .object({
    id: str,
    name: str.optional(),
    description: str.optional(),
    privileges: strList.optional(),
    roles: strList.optional().describe('Nested role ids (cycles are refused)'),
  })
  .meta({ id: 'RoleXORequest' });

export const RoleXOResponse = z.object({ id: str, source: str, name: str, description: str, readOnly: bool, privileges: strList, roles: strList }).meta({ id: 'RoleXOResponse' });

const ACTIONS = z.array(z.enum(['BROWSE', 'READ', 'EDIT', 'ADD', 'DELETE', 'CREATE', 'UPDATE', 'RUN', 'START', 'STOP', 'ASSOCIATE', 'DISASSOCIATE', 'ALL']));
export const PRIVILEGE_TYPE = z.enum(PRIVILEGE_TYPES as unknown as [string, ...string[]]);

const privilegeFields = {
  name: str.optional(),
  description: str.optional(),
  domain: str.optional(),
  format: str.optional().describe('A format or *'),
  repository: str.optional().describe('A repository name or *'),
  contentSelector: str.optional(),
  pattern: str.optional().meta({ example: 'nexus:repository-view:raw:*:read' }),
  actions: ACTIONS.optional(),
};

export const ApiPrivilege = z.object({ type: PRIVILEGE_TYPE, readOnly: bool, ...privilegeFields }).meta({
  id: 'ApiPrivilege',
  description:
    'type, name, description, readOnly, plus per type: application {domain, actions}; repository-view and repository-admin {format, repository, actions}; repository-content-selector {contentSelector, format, repository, actions}; wildcard {pattern}',
});

export const ApiPrivilegeRequest = z.object(privilegeFields).meta({
  id: 'ApiPrivilegeRequest',
  description: 'The fields of the privilege type in the path (see ApiPrivilege); name is required on create and fixed on update',
});

export const ContentSelector = z
  .object({ name: str, type: z.enum(['csel']), description: str, expression: str.meta({ example: 'format == "raw" and path =^ "/team-a/"' }) })
  .meta({ id: 'ContentSelector' });

export const ContentSelectorRequest = z.object({ name: str.optional(), description: str.optional(), expression: str }).meta({ id: 'ContentSelectorRequest' });

export const ContentSelectorPreview = z
  .object({
    expression: str,
    repository: str.optional().describe('A repository (a group: its members) or * / absent for every repository the caller may browse'),
    format: str.optional(),
  })
  .meta({ id: 'ContentSelectorPreview' });

export const RealmXO = z.object({ id: str, name: str }).meta({ id: 'RealmXO' });

export const AnonymousAccessSettings = z
  .object({ enabled: bool, userId: str.default('anonymous'), realmName: str.default('NexusAuthorizingRealm') })
  .meta({ id: 'AnonymousAccessSettings' });

// LDAP --------------------------------------------------------------------------------------

const ldapFields = {
  name: str,
  protocol: z.enum(['ldap', 'ldaps']).optional(),
  useTrustStore: bool.optional().describe('Stored; ldaps certificates are verified against the CA list of the Node runtime (NODE_EXTRA_CA_CERTS adds more)'),
  host: str,
  port: int.min(1).max(65535).optional().describe('Default 389 (ldap) or 636 (ldaps)'),
  searchBase: str.meta({ example: 'dc=example,dc=com' }),
  authScheme: z.enum(['NONE', 'SIMPLE']).optional().describe('NONE: anonymous searches; SIMPLE: bind as authUsername (DIGEST_MD5 and CRAM_MD5 are refused)'),
  authRealm: str.optional(),
  authUsername: str.optional().describe('Bind DN of the service account (SIMPLE)'),
  connectionTimeoutSeconds: int.min(1).max(3600).default(30).describe('Bounds the connect and every operation: an unreachable server never holds a login longer'),
  connectionRetryDelaySeconds: int.min(0).default(300).describe('How long a failing server is skipped'),
  maxIncidentsCount: int.min(0).default(3).describe('Consecutive failures before the server is skipped for the retry delay'),
  userBaseDn: str.optional().describe('Relative to searchBase, e.g. ou=people'),
  userSubtree: bool.optional(),
  userObjectClass: str.default('inetOrgPerson'),
  userLdapFilter: str.optional().describe('Extra filter users must match, e.g. (memberOf=cn=staff,ou=groups,dc=example,dc=com)'),
  userIdAttribute: str.default('uid'),
  userRealNameAttribute: str.default('cn'),
  userEmailAddressAttribute: str.default('mail'),
  userPasswordAttribute: str.optional().describe('Blank: passwords are checked by binding as the user; else compared with this attribute'),
  ldapGroupsAsRoles: bool.default(true).describe('LDAP groups become roles: a role whose id is the group name grants its privileges'),
  groupType: z.enum(['static', 'dynamic']).optional(),
  groupBaseDn: str.optional().describe('Relative to searchBase (static groups)'),
  groupSubtree: bool.optional(),
  groupObjectClass: str.default('groupOfNames'),
  groupIdAttribute: str.default('cn'),
  groupMemberAttribute: str.default('member'),
  groupMemberFormat: str.default('${dn}').describe('${dn}, ${username}, or a DN template such as uid=${username},ou=people,dc=example,dc=com'),
  userMemberOfAttribute: str.default('memberOf').describe('Dynamic groups: the group id is the first RDN value of each value'),
};

export const CreateLdapServerXo = z
  .object({
    ...ldapFields,
    authPassword: str
      .optional()
      .meta({ writeOnly: true, description: 'Write only: never returned. On update, leaving it out keeps the stored one unless host, port, protocol or authUsername change' }),
  })
  .meta({ id: 'CreateLdapServerXo' });

export const ReadLdapServerXo = z.object({ id: str, order: int.describe('1-based position in which servers are asked'), ...ldapFields }).meta({ id: 'ReadLdapServerXo' });

export const LdapVerifyLogin = z
  .object({ ...CreateLdapServerXo.shape, server: CreateLdapServerXo.optional(), username: str, password: str.meta({ writeOnly: true }) })
  .partial({ name: true, host: true, searchBase: true })
  .meta({ id: 'LdapVerifyLogin', description: 'The configuration plus the credentials to try (alternatively {server, username, password})' });

export const LdapUserXO = z.object({ username: str, realName: str, email: str, membership: strList }).meta({ id: 'LdapUserXO' });
