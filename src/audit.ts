/**
 * The audit log: one JSON line per operation (who, what, workflow, result) appended to
 * `<DR_LOG_DIR>/audit.jsonl`. Lines are written with O_APPEND in one write, so concurrent
 * writers never interleave within a line.
 */
import { appendFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { DrConfig } from './config';

export interface AuditRecord {
  at: string;
  action: string;
  startedBy: string;
  workflowId: string;
  result: string;
  [detail: string]: unknown;
}

export function auditLogPath(config: DrConfig): string {
  return path.join(config.logDir, 'audit.jsonl');
}

export async function appendAudit(config: DrConfig, record: AuditRecord): Promise<void> {
  await mkdir(config.logDir, { recursive: true });
  await appendFile(auditLogPath(config), `${JSON.stringify(record)}\n`, { mode: 0o640 });
}
