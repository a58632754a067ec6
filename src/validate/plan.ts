/**
 * Which checks a session validation runs, in order: decided from the (verified) manifest and the
 * request alone, so the choice is unit tested; the validation activity carries the plan out.
 */
import type { Artifact, Manifest } from '../backup/manifest';
import type { StoreLocation } from '../sessions/store';
import { artifactsOf, type CheckResult } from './session';

export type PlannedCheck =
  /** Decided without reading anything: the result itself. */
  | { kind: 'verdict'; result: CheckResult }
  /** Size and SHA-256 of the artifact in the copy the session is read from, or in the bucket. */
  | { kind: 'artifact'; copy: 'read' | 'cloud'; artifact: Artifact; tenant?: string }
  /** The session's age against the RPO. */
  | { kind: 'age' };

export interface SessionCheckPlan {
  checks: PlannedCheck[];
  /** Tenants that can be checked further (complete in the manifest, within the request). */
  tenants: string[];
}

export interface SessionCheckRequest {
  session: string;
  /** Only this tenant. */
  tenant?: string;
  /** Also check the bucket's copy (default: when the session was copied and a bucket is configured). */
  cloud?: boolean;
}

export interface SessionCheckSettings {
  /** Where the manifest was read. */
  readFrom: StoreLocation;
  /** Whether a bucket is configured. */
  bucket: boolean;
}

export function planSessionChecks(manifest: Manifest, request: SessionCheckRequest, settings: SessionCheckSettings): SessionCheckPlan {
  const checks: PlannedCheck[] = [];
  const verdict = (result: CheckResult) => checks.push({ kind: 'verdict', result });
  if (request.tenant && !manifest.tenants[request.tenant]) {
    verdict({ name: 'tenant', status: 'fail', tenant: request.tenant, message: `tenant ${request.tenant} is not in session ${request.session}` });
    return { checks, tenants: [] };
  }
  for (const [name, entry] of Object.entries(manifest.tenants)) {
    if (request.tenant && name !== request.tenant) continue;
    if (entry.status !== 'complete')
      verdict({ name: 'tenant', status: 'fail', tenant: name, message: `tenant ${name} failed in this session: ${entry.error ?? 'no detail'}` });
  }
  // The copy the session is read from, and the bucket's too when the session was copied there.
  const alsoCloud = settings.readFrom === 'local' && (request.cloud ?? (manifest.cloud !== null && settings.bucket));
  const cloudCopy = manifest.cloud !== null && settings.bucket;
  for (const { artifact, tenant } of artifactsOf(manifest, request.tenant)) {
    const of = tenant ? { tenant } : {};
    checks.push({ kind: 'artifact', copy: 'read', artifact, ...of });
    if (!alsoCloud) continue;
    if (cloudCopy) checks.push({ kind: 'artifact', copy: 'cloud', artifact, ...of });
    else verdict({ name: 'artifact-cloud', status: 'fail', artifact: artifact.path, ...of, message: 'this session was not copied to the bucket' });
  }
  checks.push({ kind: 'age' });
  const tenants = Object.entries(manifest.tenants)
    .filter(([name, e]) => e.status === 'complete' && (!request.tenant || name === request.tenant))
    .map(([name]) => name);
  return { checks, tenants };
}
