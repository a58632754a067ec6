/**
 * The filestore scenarios of `npm run bench`: fs (backups, files-only recovery and restore test
 * against `tar | zstd -1 | age` and back), s3 (S3 requests per file, through the counting proxy)
 * and big (a large filestore, with its cloud copy, one run).
 */
import { copyFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { dirBytes, MiB } from '../harness';
import { ageZstdUntar, tarZstdAge } from './bare';
import type { Bench } from './bench';
import { AIMS, INCREMENT } from './params';
import { addFiles, benchTenant, filestoreTenant } from './tenants';

/** The fs scenario: first, incremental backup, files-only recovery and restore test of the filestore tenant. */
export async function fsScenario(b: Bench): Promise<void> {
  const t = await filestoreTenant(b);
  const dir = t.filestoreDir;
  const added = Math.max(1, Math.round(t.fileCount * INCREMENT));
  const r = {
    tar: [] as number[],
    tarBytes: [] as number[],
    first: [] as number[],
    firstBytes: [] as number[],
    tarIncr: [] as number[],
    incr: [] as number[],
    untar: [] as number[],
    recover: [] as number[],
    restoreTest: [] as number[],
  };
  // A failed run ends the scenario, but the runs done so far still make figures.
  const failure = await b.eachRun('fs', 'files', async (i, w) => {
    const tmp = b.tmp('fs');
    const archive = path.join(tmp, 'first.tar.zst.age');
    const snap0 = path.join(tmp, 'snap0');
    const [bare, first] = await b.alternate(
      i,
      () => tarZstdAge(dir, b.recipient, archive, snap0),
      () => b.cli('fs', w, ['backup', '--tenant', t.name, '--no-cloud', '--wait']),
    );
    const session = String(first.json.session);
    r.tar.push(bare.ms);
    r.tarBytes.push(statSync(archive).size);
    r.first.push(first.ms);
    r.firstBytes.push(dirBytes(b.backupDir(w)));

    const files = addFiles(dir, added, b.p.fileSize);
    try {
      copyFileSync(snap0, path.join(tmp, 'snap1'));
      const [bareIncr, incr] = await b.alternate(
        i,
        () => tarZstdAge(dir, b.recipient, path.join(tmp, 'incr.tar.zst.age'), path.join(tmp, 'snap1')),
        () => b.cli('fs', w, ['backup', '--tenant', t.name, '--no-cloud', '--wait']),
      );
      r.tarIncr.push(bareIncr.ms);
      r.incr.push(incr.ms);
    } finally {
      for (const f of files) rmSync(f, { force: true });
    }

    const dest = path.join(tmp, 'restored');
    const [untar, recover] = await b.alternate(
      i,
      async () => {
        const x = await ageZstdUntar(b.identityFile, archive, dest);
        rmSync(dest, { recursive: true, force: true });
        return x.ms;
      },
      async () => (await b.cli('fs', w, ['recover', '-m', 'files-only', '--tenant', t.name, '-s', session, '--yes', '--wait'])).ms,
    );
    await b.sweep();
    r.untar.push(untar);
    r.recover.push(recover);
    r.restoreTest.push((await b.cli('fs', w, ['validate', session, '--tenant', t.name, '--restore-test', '--no-cloud', '--wait'])).ms);
    await b.sweep();
    console.log(
      `  run ${i + 1}: first backup ${(first.ms / 1000).toFixed(2)} s vs tar ${(bare.ms / 1000).toFixed(2)} s; incremental ${(r.incr.at(-1)! / 1000).toFixed(2)} s vs ${(r.tarIncr.at(-1)! / 1000).toFixed(2)} s; ` +
        `files-only recovery ${(recover / 1000).toFixed(2)} s, restore test ${(r.restoreTest.at(-1)! / 1000).toFixed(2)} s vs untar ${(untar / 1000).toFixed(2)} s`,
    );
  });
  const what = `${t.fileCount.toLocaleString('en-US')} files (${(t.filestoreBytes / MiB).toFixed(0)} MiB)`;
  const tarLabel = '`tar -g SNAP -cf - . | zstd -1 | age -r R > FILE`';
  const untarLabel = '`age -d -i KEY FILE | zstd -d | tar -x` (no fsync)';
  const smallDb = `the tenant's ${((t.dbSizeBytes ?? 0) / MiB).toFixed(0)} MiB database is dumped too (odoo-dr side only)`;
  b.pair({
    id: 'fs-first-backup',
    name: `Filestore first backup, ${what}, vs \`tar | zstd -1 | age\``,
    scenario: 'fs',
    ours: { label: '`odoo-dr backup --tenant T --no-cloud --wait` into an empty DR_BACKUP_DIR', unit: 'ms', runs: r.first },
    bare: { label: tarLabel, unit: 'ms', runs: r.tar },
    aim: { of: 'ratio', op: '<=', value: AIMS.fsBackup },
    note: smallDb,
  });
  b.pair({
    id: 'fs-incremental-backup',
    name: `Filestore incremental backup (+${added.toLocaleString('en-US')} files) vs \`tar -g | zstd -1 | age\``,
    scenario: 'fs',
    ours: { label: 'a second `odoo-dr backup --tenant T --no-cloud --wait`', unit: 'ms', runs: r.incr },
    bare: { label: `${tarLabel} with a copy of the first run's snapshot (level 1)`, unit: 'ms', runs: r.tarIncr },
    note: smallDb,
  });
  b.pair({
    id: 'fs-first-size',
    name: 'Filestore first backup output size vs `tar | zstd -1 | age`',
    scenario: 'fs',
    ours: { label: 'every file in DR_BACKUP_DIR after the first backup', unit: 'bytes', runs: r.firstBytes },
    bare: { label: 'the encrypted archive', unit: 'bytes', runs: r.tarBytes },
    note: 'includes the dump of the small database',
  });
  b.pair({
    id: 'fs-recover',
    name: `Files-only recovery, ${what}, vs \`age -d | zstd -d | tar -x\``,
    scenario: 'fs',
    ours: { label: '`odoo-dr recover -m files-only --tenant T -s SESSION --yes --wait` (shadow folder, verification, swap)', unit: 'ms', runs: r.recover },
    bare: { label: untarLabel, unit: 'ms', runs: r.untar },
    aim: { of: 'ratio', op: '<=', value: AIMS.fsRestore },
  });
  b.pair({
    id: 'fs-restore-test',
    name: `Restore test, ${what}, vs \`age -d | zstd -d | tar -x\``,
    scenario: 'fs',
    ours: { label: '`odoo-dr validate SESSION --tenant T --restore-test --no-cloud --wait`', unit: 'ms', runs: r.restoreTest },
    bare: { label: untarLabel, unit: 'ms', runs: r.untar },
    aim: { of: 'ratio', op: '<=', value: AIMS.fsRestore },
    note: smallDb,
  });
  if (failure) throw failure;
}

/** The s3 scenario: S3 requests of the filestore tenant's first and incremental backups with their cloud copy. */
export async function s3Scenario(b: Bench): Promise<void> {
  const t = await filestoreTenant(b);
  const methods = (m: Record<string, number>) =>
    Object.entries(m)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
  const w = await b.worker('s3', 'files');
  try {
    b.proxy.resetStats();
    const first = await b.cli('s3', w, ['backup', '--tenant', t.name, '--wait']);
    const firstStats = { requests: b.proxy.stats.requests, byMethod: { ...b.proxy.stats.byMethod } };
    console.log(`  first backup with cloud copy: ${firstStats.requests} S3 requests (${methods(firstStats.byMethod)}) in ${(first.ms / 1000).toFixed(2)} s`);
    b.scenarioInfo.s3 = { first: { ...firstStats, ms: first.ms } };
    b.figure({
      id: 's3-first-backup',
      name: `S3 requests, first backup of ${t.fileCount.toLocaleString('en-US')} files, per file`,
      scenario: 's3',
      odooDr: {
        label: `\`odoo-dr backup --tenant T --wait\` with its cloud copy to an empty prefix (${methods(firstStats.byMethod)}; ${(first.ms / 1000).toFixed(1)} s)`,
        unit: 'count',
        suffix: 'requests',
        median: firstStats.requests,
        runs: [firstStats.requests],
      },
      bare: { label: 'files in the filestore', unit: 'count', suffix: 'files', median: t.fileCount, runs: [t.fileCount] },
      ratio: firstStats.requests / t.fileCount,
      aim: { of: 'ratio', op: '<=', value: AIMS.s3PerFile },
    });

    const added = Math.max(1, Math.round(t.fileCount * INCREMENT));
    const files = addFiles(t.filestoreDir, added, b.p.fileSize);
    try {
      b.proxy.resetStats();
      const incr = await b.cli('s3', w, ['backup', '--tenant', t.name, '--wait']);
      const incrStats = { requests: b.proxy.stats.requests, byMethod: { ...b.proxy.stats.byMethod } };
      console.log(
        `  incremental backup with cloud copy: ${incrStats.requests} S3 requests (${methods(incrStats.byMethod)}) in ${(incr.ms / 1000).toFixed(2)} s`,
      );
      b.scenarioInfo.s3 = { first: { ...firstStats, ms: first.ms }, incremental: { ...incrStats, ms: incr.ms, addedFiles: added } };
      b.figure({
        id: 's3-incremental-backup',
        name: `S3 requests, incremental backup (+${added.toLocaleString('en-US')} files), per file`,
        scenario: 's3',
        odooDr: {
          label: `a second backup with cloud copy (${methods(incrStats.byMethod)}; ${(incr.ms / 1000).toFixed(1)} s)`,
          unit: 'count',
          suffix: 'requests',
          median: incrStats.requests,
          runs: [incrStats.requests],
        },
        bare: { label: 'files in the filestore', unit: 'count', suffix: 'files', median: t.fileCount + added, runs: [t.fileCount + added] },
        ratio: incrStats.requests / (t.fileCount + added),
      });
    } finally {
      for (const f of files) rmSync(f, { force: true });
    }
  } finally {
    await w.stop();
  }
}

/** The big scenario (one run): backup with cloud copy and files-only recovery from the bucket of --big-files files. */
export async function bigScenario(b: Bench): Promise<void> {
  const t = await benchTenant(b, 'big', { moveLines: 500, files: b.p.bigFiles, fileSize: b.p.fileSize });
  b.scenarioInfo.big = { tenant: t.name, files: t.fileCount, filestoreBytes: t.filestoreBytes };
  const what = `${t.fileCount.toLocaleString('en-US')} files`;
  const w = await b.worker('big', 'big');
  try {
    const tmp = b.tmp('big');
    const archive = path.join(tmp, 'first.tar.zst.age');
    const bare = await tarZstdAge(t.filestoreDir, b.recipient, archive);
    b.proxy.resetStats();
    const backup = await b.cli('big', w, ['backup', '--tenant', t.name, '--wait']);
    const requests = b.proxy.stats.requests;
    console.log(`  backup with cloud copy ${(backup.ms / 1000).toFixed(1)} s (${requests} S3 requests) vs tar ${(bare.ms / 1000).toFixed(1)} s`);
    b.pair({
      id: 'big-backup',
      name: `Filestore first backup with cloud copy, ${what}, vs \`tar | zstd -1 | age\``,
      scenario: 'big',
      ours: { label: `\`odoo-dr backup --tenant T --wait\` (local and cloud copy; ${requests} S3 requests)`, unit: 'ms', runs: [backup.ms] },
      bare: { label: '`tar -cf - . | zstd -1 | age -r R > FILE` (local only)', unit: 'ms', runs: [bare.ms] },
      planned: 1,
    });
    const session = String(backup.json.session);
    const dest = path.join(tmp, 'restored');
    const untar = await ageZstdUntar(b.identityFile, archive, dest);
    rmSync(dest, { recursive: true, force: true });
    const recover = await b.cli('big', w, ['recover', '-m', 'files-only', '-c', '--tenant', t.name, '-s', session, '--yes', '--wait']);
    await b.sweep();
    console.log(`  files-only recovery from the bucket ${(recover.ms / 1000).toFixed(1)} s vs untar ${(untar.ms / 1000).toFixed(1)} s`);
    b.pair({
      id: 'big-recover',
      name: `Files-only recovery from the bucket, ${what}, vs \`age -d | zstd -d | tar -x\``,
      scenario: 'big',
      ours: { label: '`odoo-dr recover -m files-only -c --tenant T -s SESSION --yes --wait`', unit: 'ms', runs: [recover.ms] },
      bare: { label: '`age -d -i KEY FILE | zstd -d | tar -x` of a local archive', unit: 'ms', runs: [untar.ms] },
      planned: 1,
    });
  } finally {
    await w.stop();
  }
}
