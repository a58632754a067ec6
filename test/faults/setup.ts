/** Root hooks of `npm run test:faults`: the shared ones, plus the fault table printed at the end. */
import { mochaHooks as shared } from '../setup';
import { REPO_ROOT } from '../helpers/config';
import { writeFaultTable } from './table';

export const mochaHooks = {
  async afterAll(this: Mocha.Context) {
    this.timeout(60_000);
    process.stdout.write(`\nFault table (also in dist/fault-table.md):\n\n${writeFaultTable(REPO_ROOT)}\n`);
    await shared.afterAll.call(this);
  },
};
