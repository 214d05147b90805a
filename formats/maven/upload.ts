/**
 * Nexus's Maven component upload (`POST /service/rest/v1/components`): `maven2.groupId`,
 * `maven2.artifactId`, `maven2.version` and files `maven2.assetN` with `maven2.assetN.extension`
 * and an optional `maven2.assetN.classifier`. Pure: the whole form is checked before anything is
 * stored, against the target's version policy too. Snapshot versions are refused (builds are
 * deployed by Maven, timestamped).
 */
import { badRequest } from '../../src/errors.js';
import type { UploadForm, UploadPlan } from '../../src/repository/format.js';
import { artifactDir, contentTypeOf, fileName, parseMavenPath } from './layout.js';
import { componentOf, mavenAttributes } from './components.js';
import { MAX_POM_BYTES, pomCoordinates, pomProblem, pomXml } from './pom.js';
import { versionRefusal } from './policy.js';
import type { Repository } from '../../src/repository/repository.js';

export async function planMavenUpload(form: UploadForm, target: Repository): Promise<UploadPlan[]> {
  const fromPom = await uploadedPomCoordinates(form);
  const required = (f: 'groupId' | 'artifactId' | 'version') => {
    const v = form.fields.get(`maven2.${f}`)?.trim() || fromPom?.[f];
    if (!v) throw badRequest(`maven2.${f}: is required${fromPom ? ' (the uploaded POM does not give it)' : ''}`, { field: `maven2.${f}` });
    return v;
  };
  const generatePom = form.fields.get('maven2.generate-pom')?.trim() === 'true';
  const groupId = required('groupId');
  const artifactId = required('artifactId');
  const version = required('version');
  const out: UploadPlan[] = [];
  let mainExtension: string | undefined;
  for (const field of form.files.keys()) {
    if (!/^maven2\.asset\d+$/.test(field)) throw badRequest(`${field}: unexpected file field (expected maven2.asset1, maven2.asset2, …)`, { field });
    const extension = form.fields.get(`${field}.extension`)?.trim();
    if (!extension) throw badRequest(`${field}.extension: is required`, { field: `${field}.extension` });
    const classifier = form.fields.get(`${field}.classifier`)?.trim() || null;
    const path = `${artifactDir(groupId, artifactId)}/${version}/${fileName({ artifactId, version, classifier, extension })}`;
    const parsed = parseMavenPath(path);
    if (!parsed || parsed.kind !== 'artifact' || parsed.coords.classifier !== classifier || parsed.coords.extension !== extension) {
      throw badRequest(`${field}: ${groupId}:${artifactId}:${version}${classifier ? ':' + classifier : ''}:${extension} are not valid Maven coordinates`, { field });
    }
    const refusal = versionRefusal(target, parsed);
    if (refusal) throw badRequest(refusal, { field: 'maven2.version' });
    if (generatePom && extension === 'pom' && !classifier) {
      throw badRequest(`maven2.generate-pom: cannot generate a POM when ${field} is one; upload either`, { field: 'maven2.generate-pom' });
    }
    if (out.some((u) => u.path === path)) throw badRequest(`${field}: '${path}' is uploaded twice`, { field });
    if (!classifier) mainExtension ??= extension;
    out.push({ field, path, contentType: contentTypeOf(path), component: componentOf(path), attributes: mavenAttributes(parsed.coords) });
  }
  if (out.length === 0) throw badRequest('maven2.asset1: at least one file is required', { field: 'maven2.asset1' });
  if (generatePom) out.push(generatedPom(form, groupId, artifactId, version, mainExtension));
  if (version.endsWith('-SNAPSHOT')) throw badRequest('maven2.version: snapshots are deployed by Maven, not uploaded', { field: 'maven2.version' });
  return out;
}

/**
 * Nexus's `maven2.generate-pom`: a minimal POM for coordinates uploaded without one, its packaging
 * `maven2.packaging` or else the main (unclassified) file's extension, so that Maven resolves the
 * artifact as a dependency without warnings about a missing POM.
 */
function generatedPom(form: UploadForm, groupId: string, artifactId: string, version: string, mainExtension: string | undefined): UploadPlan {
  const given = form.fields.get('maven2.packaging')?.trim();
  if (given && !/^[A-Za-z0-9][\w.-]*$/.test(given)) throw badRequest(`maven2.packaging: '${given}' is not a packaging name`, { field: 'maven2.packaging' });
  const packaging = given || mainExtension || 'jar';
  const path = `${artifactDir(groupId, artifactId)}/${version}/${fileName({ artifactId, version, classifier: null, extension: 'pom' })}`;
  const parsed = parseMavenPath(path);
  if (parsed?.kind !== 'artifact') throw badRequest(`maven2.generate-pom: '${path}' is not a valid POM path`, { field: 'maven2.generate-pom' });
  return {
    field: 'maven2.generate-pom',
    path,
    contentType: contentTypeOf(path),
    component: componentOf(path),
    attributes: mavenAttributes(parsed.coords),
    content: Buffer.from(pomXml({ groupId, artifactId, version, packaging })),
  };
}

/**
 * Nexus takes coordinates not given as fields from the uploaded POM (the unclassified asset with
 * extension pom), if there is one and a field is missing; null otherwise. A POM that is not one is
 * a 400 naming its field.
 */
async function uploadedPomCoordinates(form: UploadForm): Promise<{ groupId?: string; artifactId?: string; version?: string } | null> {
  if (['groupId', 'artifactId', 'version'].every((f) => form.fields.get(`maven2.${f}`)?.trim())) return null;
  const field = [...form.files.keys()].find(
    (f) => /^maven2\.asset\d+$/.test(f) && form.fields.get(`${f}.extension`)?.trim() === 'pom' && !form.fields.get(`${f}.classifier`)?.trim(),
  );
  const file = field ? form.files.get(field) : undefined;
  if (!field || !file?.open) return null;
  if (file.size > MAX_POM_BYTES) throw badRequest(`${field}: the POM is larger than ${MAX_POM_BYTES} bytes`, { field });
  const chunks: Buffer[] = [];
  for await (const chunk of file.open()) chunks.push(chunk as Buffer);
  const xml = Buffer.concat(chunks).toString('utf8');
  const problem = pomProblem(xml);
  if (problem) throw badRequest(`${field}: ${problem}`, { field });
  return pomCoordinates(xml);
}
