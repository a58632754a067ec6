/** The retention policy alone (no services): which sessions are never deleted, whatever their age. */
import assert from 'node:assert/strict';
import { sessionsToKeep } from '../../src/backup/retention';
import type { SessionSummary } from '../../src/sessions/catalog';

const session = (n: number, status: SessionSummary['status'], tenants: Record<string, 'complete' | 'failed'>, validation: SessionSummary['validation'] = 'never'): SessionSummary => ({
  session: `backup_202611${String(n).padStart(2, '0')}_020000_aaaaaa`,
  startedAt: '',
  status,
  tenants,
  validation,
  location: 'cloud',
});

describe('retention policy: sessionsToKeep', () => {
  it('a later partial session never makes the last complete one expire (the data-loss case)', () => {
    const sessions = [session(20, 'partial', { acme: 'failed', globex: 'complete' }), session(10, 'complete', { acme: 'complete', globex: 'complete' })];
    const keep = sessionsToKeep(sessions);
    assert.ok(keep.has(sessions[1]!.session), 'acme is complete only in the older session');
    assert.ok(keep.has(sessions[0]!.session), "globex's newest complete");
  });

  it("keeps each tenant's newest validated session too, and nothing that is incomplete, corrupt or superseded", () => {
    const sessions = [
      session(25, 'incomplete', {}),
      session(24, 'corrupt', {}),
      session(23, 'complete', { acme: 'complete' }, 'never'),
      session(22, 'complete', { acme: 'complete' }, 'fail'),
      session(21, 'complete', { acme: 'complete' }, 'pass'),
      session(20, 'complete', { acme: 'complete' }, 'pass'),
    ];
    assert.deepEqual([...sessionsToKeep(sessions)].sort(), [sessions[2]!.session, sessions[4]!.session].sort(), 'the newest complete (23) and the newest validated (21)');
  });
});
