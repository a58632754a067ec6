/**
 * What `odoo-dr setup` reports: one row per thing checked, with the exact fix when it is not ok.
 * Checks are data so the CLI can print them as a table or as JSON, and tests can assert on them.
 */

/**
 * ok: works. problem: broken, setup exits non-zero. warning: works but weaker than it should be
 * (or the server does not support the feature). skipped: not configured, nothing to check.
 */
export type CheckStatus = 'ok' | 'problem' | 'warning' | 'skipped';

export interface SetupCheck {
  /** config, keys, postgresql, s3, smtp, webhook, temporal */
  service: string;
  check: string;
  status: CheckStatus;
  detail: string;
  /** The command or change that fixes it (problems and warnings). */
  fix?: string;
}

export const ok = (service: string, check: string, detail: string): SetupCheck => ({ service, check, status: 'ok', detail });
export const problem = (service: string, check: string, detail: string, fix: string): SetupCheck => ({ service, check, status: 'problem', detail, fix });
export const warning = (service: string, check: string, detail: string, fix?: string): SetupCheck => ({
  service,
  check,
  status: 'warning',
  detail,
  ...(fix ? { fix } : {}),
});
export const skipped = (service: string, check: string, detail: string): SetupCheck => ({ service, check, status: 'skipped', detail });

/** True when nothing is broken (warnings and skipped checks do not count). */
export function allWorking(checks: SetupCheck[]): boolean {
  return checks.every((c) => c.status !== 'problem');
}

/** The message of an error, first line only (SDK errors can carry pages). */
export function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0] ?? message;
}
