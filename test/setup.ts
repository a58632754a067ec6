/**
 * Mocha root hooks, loaded once per run (.mocharc.json "require"): one Runtime, one of each
 * Temporal environment shared by every test file, torn down at the end; the bucket prefixes tests
 * were given (test/helpers/bucket.ts) emptied.
 */
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { emptyTestPrefixes } from './helpers/bucket';
import { teardownServers } from './helpers/temporal';

Runtime.install({ logger: new DefaultLogger('ERROR') });

export const mochaHooks = {
  async afterAll(this: Mocha.Context) {
    this.timeout(120_000);
    await teardownServers();
    await emptyTestPrefixes();
  },
};
