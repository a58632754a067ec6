import { isCancellation, log, patched, proxyActivities, uuid4, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { RestoreTestResult } from '../src/validate/restore-test';
import type { CheckResult } from '../src/validate/session';
import type { SessionResult, SessionSource } from '../src/sessions/catalog';
import { workflowIds } from './definitions';
import { longActivity, notifyActivity, quickActivity, sessionActivity } from './options';

const quick = proxyActivities<Activities>(quickActivity);
const session = proxyActivities<Activities>(sessionActivity);
const long = proxyActivities<Activities>(longActivity);

export interface ValidationInput {
  /** Session name, or `latest` (default): the newest complete session that did not fail validation. */
  session?: string;
  /**
   * Where to read the session: `auto` (default) the local copy when the worker's host has it, else
   * the bucket; `cloud` the bucket only (the local folder is not consulted); `local` the folder only.
   */
  source?: SessionSource;
  /** Only this tenant of the session. */
  tenant?: string;
  /** Also restore each tenant into a neutralized scratch copy and run the Odoo checks. */
  restoreTest?: boolean;
  /** Check the cloud copy of every artifact too (default: when the session was copied). */
  cloud?: boolean;
  /** Restore tests read the session from the bucket instead of local disk (drills with -c). */
  fromCloud?: boolean;
  /** Skip the decryption/integrity checks that a restore test repeats anyway (restore-only drills). */
  restoreOnly?: boolean;
  /** Accept an unsigned session (made before signing was set up); the manifest check warns. */
  allowUnsigned?: boolean;
  /** Who asked (for the audit log); a schedule leaves it unset. */
  startedBy?: string;
}

export interface RestoreMeasure {
  tenant: string;
  databaseMs: number;
  filestoreMs: number;
  databaseBytes: number;
  filestoreBytes: number;
  /** Restore time per GiB of restored database + filestore. */
  secondsPerGiB: number;
}

export interface ValidationReport {
  session: string;
  tenant?: string;
  workflowId: string;
  startedAt: string;
  finishedAt: string;
  status: 'pass' | 'fail';
  checks: CheckResult[];
  restores: RestoreMeasure[];
  reportPath?: string;
}

const GiB = 1024 ** 3;

/** Turns restore-test results into restore measures (time per GiB). */
export function measureRestore(r: RestoreTestResult): RestoreMeasure {
  const bytes = r.databaseBytes + r.filestoreBytes;
  const seconds = (r.databaseMs + r.filestoreMs) / 1000;
  return {
    tenant: r.tenant,
    databaseMs: r.databaseMs,
    filestoreMs: r.filestoreMs,
    databaseBytes: r.databaseBytes,
    filestoreBytes: r.filestoreBytes,
    secondsPerGiB: bytes > 0 ? seconds / (bytes / GiB) : 0,
  };
}

/** Validates one session (shared by validationWorkflow and drillWorkflow). */
export async function validateSession(
  input: ValidationInput & { session: string },
): Promise<Omit<ValidationReport, 'workflowId' | 'startedAt' | 'finishedAt' | 'reportPath'>> {
  const source: SessionSource = input.source ?? (input.fromCloud ? 'cloud' : 'auto');
  const trust = input.allowUnsigned ? { allowUnsigned: true } : {};
  const structure = await session.checkBackupSession({
    session: input.session,
    source,
    ...trust,
    ...(input.cloud !== undefined ? { cloud: input.cloud } : {}),
    ...(input.tenant ? { tenant: input.tenant } : {}),
  });
  const checks = [...structure.checks];
  const restores: RestoreMeasure[] = [];
  if (structure.manifestOk) {
    // The restore test reads and verifies every filestore file: the archive checks leave them to it,
    // and it reports the filestore-blobs check (each file read once instead of twice).
    const filesByRestore = input.restoreTest === true && !input.restoreOnly && structure.tenants.length > 0 && patched('restore-test-verifies-files-once');
    // Likewise the dump: the restore decrypts, decompresses and lists it, and reports dump-integrity;
    // the archive checks are then left out altogether (the dump read once instead of twice).
    const dumpByRestore = filesByRestore && patched('restore-test-reads-dump-once');
    for (const tenant of structure.tenants) {
      if (!input.restoreOnly && !dumpByRestore) {
        checks.push(
          ...(await long.checkTenantArchives({ session: input.session, tenant, source, ...trust, ...(filesByRestore ? { skipFilestore: true } : {}) })),
        );
      }
      if (input.restoreTest) {
        const result = await long.restoreTestTenant({
          session: input.session,
          tenant,
          id: uuid4().replace(/-/g, '').slice(0, 8),
          fromCloud: input.fromCloud ?? false,
          source,
          ...trust,
          ...(filesByRestore ? { filestoreBlobsCheck: true } : {}),
          ...(dumpByRestore ? { dumpIntegrityCheck: true } : {}),
        });
        checks.push(...result.checks);
        if (result.checks.every((c) => c.status !== 'fail')) restores.push(measureRestore(result));
      }
    }
  }
  const status = checks.some((c) => c.status === 'fail') ? 'fail' : 'pass';
  return { session: input.session, ...(input.tenant ? { tenant: input.tenant } : {}), status, checks, restores };
}

/**
 * Proves a backup session restores: manifest, checksums (local and cloud), decryption, archive
 * integrity, filestore blobs, age against the RPO and, with `restoreTest`, a real restore into a
 * neutralized scratch copy with Odoo-aware checks. The report is kept as JSON under DR_LOG_DIR.
 */
export async function validationWorkflow(input: ValidationInput = {}): Promise<ValidationReport> {
  // Runs started before audit lines and alerts existed replay without them.
  if (!patched('validation-audit-and-alerts')) return runValidation(input);
  let report: ValidationReport;
  try {
    report = await runValidation(input);
  } catch (err) {
    if (!isCancellation(err)) {
      await auditAndAlert('validation', {
        session: input.session ?? 'latest',
        status: 'fail',
        finishedAt: new Date(Date.now()).toISOString(),
        startedBy: input.startedBy,
        failures: [],
        error: errorText(err),
        detail: { error: errorText(err) },
      });
    }
    throw err;
  }
  await auditAndAlert('validation', {
    session: report.session,
    status: report.status,
    finishedAt: report.finishedAt,
    startedBy: input.startedBy,
    failures: sessionResult('validation', report, false).failures,
    detail: { restoreTest: input.restoreTest ?? false, ...(input.tenant ? { tenant: input.tenant } : {}), reportPath: report.reportPath },
  });
  return report;
}

/** The error's message, for audit lines and alerts (an activity's failure: its cause's message). */
export function errorText(err: unknown): string {
  const e = err as { message?: string; cause?: { message?: string } };
  return (e.cause?.message ?? e.message ?? String(err)).slice(0, 500);
}

async function runValidation(input: ValidationInput): Promise<ValidationReport> {
  const startedAt = new Date(Date.now()).toISOString();
  if (input.restoreTest) {
    // Leftovers of restore tests whose worker died are removed before making new ones.
    const swept = await quick.sweepScratchCopies({});
    if (swept.length) log.info('swept scratch copies', { swept });
  }
  const name = await quick.resolveBackupSession({
    ...(input.session ? { session: input.session } : {}),
    source: input.source ?? (input.fromCloud ? 'cloud' : 'auto'),
    ...(input.allowUnsigned ? { allowUnsigned: true } : {}),
  });
  const report: ValidationReport = {
    ...(await validateSession({ ...input, session: name })),
    workflowId: workflowInfo().workflowId,
    startedAt,
    finishedAt: new Date(Date.now()).toISOString(),
  };
  report.reportPath = await quick.saveReport({ kind: 'validation', name, report, result: sessionResult('validation', report, input.restoreTest ?? false) });
  return report;
}

const notify = proxyActivities<Activities>(notifyActivity);
/** Waiting for the alerts workflow includes its deliveries (SMTP and webhook time out after 15 s each). */
const alerting = proxyActivities<Activities>({ startToCloseTimeout: '5 minutes', retry: { initialInterval: '5 seconds', maximumAttempts: 3 } });

/**
 * The audit line of a validation or drill, and its result to the alert state as the monitor's
 * `integrity/<kind>` check: a failure alerts at once, a later pass sends the recovery message.
 * Neither may fail the workflow: its report is already saved.
 */
export async function auditAndAlert(
  kind: 'validation' | 'drill',
  r: {
    session: string;
    status: 'pass' | 'fail';
    finishedAt: string;
    startedBy: string | undefined;
    failures: string[];
    error?: string;
    detail: Record<string, unknown>;
  },
): Promise<void> {
  const info = workflowInfo();
  const warn = (what: string) => (err: unknown) => log.warn(`${what} failed`, { error: err instanceof Error ? err.message : String(err) });
  await notify
    .appendAuditRecord({
      at: new Date(Date.now()).toISOString(),
      action: kind,
      startedBy: r.startedBy ?? 'schedule',
      workflowId: info.workflowId,
      result: r.status,
      session: r.session,
      ...r.detail,
    })
    .catch(warn('audit line'));
  await alerting
    .reportResultToAlerts({
      workflowId: workflowIds.alerts(info.taskQueue),
      taskQueue: info.taskQueue,
      kind,
      session: r.session,
      status: r.status,
      finishedAt: r.finishedAt,
      failures: r.failures,
      reportingWorkflowId: info.workflowId,
      ...(r.error ? { error: r.error } : {}),
    })
    .catch(warn('alert'));
}

/** The summary kept with the session (it decides what `latest` means). */
export function sessionResult(
  kind: SessionResult['kind'],
  report: Omit<ValidationReport, 'workflowId' | 'startedAt' | 'finishedAt'> & { finishedAt?: string },
  restoreTest: boolean,
): SessionResult {
  const GiBs = report.restores.reduce((a, m) => a + (m.databaseBytes + m.filestoreBytes) / GiB, 0);
  const seconds = report.restores.reduce((a, m) => a + (m.databaseMs + m.filestoreMs) / 1000, 0);
  return {
    kind,
    session: report.session,
    status: report.status,
    finishedAt: report.finishedAt ?? new Date(Date.now()).toISOString(),
    workflowId: workflowInfo().workflowId,
    ...(report.tenant ? { tenant: report.tenant } : {}),
    restoreTest,
    ...(GiBs > 0 ? { secondsPerGiB: seconds / GiBs } : {}),
    failures: report.checks
      .filter((c) => c.status === 'fail')
      .slice(0, 20)
      .map((c) => `${c.tenant ? `${c.tenant}: ` : ''}${c.name}: ${c.message}`.slice(0, 500)),
  };
}
