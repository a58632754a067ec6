/**
 * The streaming pipeline, with real children (head, sh, zstd, age) in temp dirs. Keys are generated
 * at run time with age-keygen. ENOSPC is tested on a real 1 MiB tmpfs (we run as root); where it
 * cannot be mounted, on a partial file symlinked to /dev/full, which fails every write with ENOSPC.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import * as tar from 'tar';
import { ArtifactCorruptedError, DiskFullError, EncryptionKeyError, InvalidInputError, PipelineError } from '../../src/errors';
import { ageSealer } from '../../src/crypto/age';
import { hashFile, runPipeline, zstdHasRowMatchFinderFlag, zstdStage, type Stage } from '../../src/pipeline';
import { rejection } from '../helpers/assert';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const sh = (name: string, script: string, env?: NodeJS.ProcessEnv): Stage => ({ name, command: 'sh', args: ['-c', script], env });

/** Running (a zombie is dead: orphans are reparented to PID 1, which may not reap them in a container). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

describe('pipeline', function () {
  let dir: string;
  let key: string;
  let recipient: string;

  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-pipeline-'));
    key = path.join(dir, 'key.txt');
    execFileSync('age-keygen', ['-o', key], { stdio: 'ignore' });
    recipient = execFileSync('age-keygen', ['-y', key], { encoding: 'utf8' }).trim();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Nothing but the expected files: no `.partial` left behind. */
  const leftovers = (sub = dir) => readdirSync(sub).filter((f) => f.endsWith('.partial'));

  describe('stages', () => {
    it('the database dump’s zstd settings (DR_DUMP_ZSTD_PARAMETERS) run on the installed zstd and read back with a plain `zstd -d`', async () => {
      const plain = path.join(dir, 'tuned.in');
      // Rows of a dump-like text: repetitive, with varying numbers.
      writeFileSync(
        plain,
        Array.from({ length: 40_000 }, (_, i) => `${i}\t${(i * 7919) % 10007}\taccount_move_line ${i % 97}\t2026-11-${(i % 28) + 1}\n`).join(''),
      );
      const dest = path.join(dir, 'tuned.zst');
      const tuned = zstdStage(1, 0, {
        parameters: 'strategy=5,windowLog=18,chainLog=12,hashLog=13,searchLog=1,minMatch=6',
        noRowMatchFinder: await zstdHasRowMatchFinderFlag(),
      });
      await runPipeline({ source: { name: 'cat', command: 'cat', args: [plain] }, stages: [tuned], dest });
      assert.ok(execFileSync('zstd', ['-d', '-c', dest], { maxBuffer: 64 * 1024 * 1024 }).equals(readFileSync(plain)));
      assert.equal(await zstdHasRowMatchFinderFlag(), /no-\]row-match-finder/.test(execFileSync('zstd', ['-H'], { encoding: 'utf8' })));
    });

    it('builds zstd and age command lines', () => {
      assert.deepEqual(zstdStage(3), { name: 'zstd', command: 'zstd', args: ['-q', '-c', '-3', '-T0'] });
      assert.deepEqual(zstdStage(19, 2).args, ['-q', '-c', '-19', '-T2']);
      assert.deepEqual(zstdStage(1, 0, { parameters: 'strategy=5,windowLog=18' }).args, ['-q', '-c', '-1', '--zstd=strategy=5,windowLog=18', '-T0']);
      assert.deepEqual(zstdStage(1, 0, { parameters: 'strategy=5', noRowMatchFinder: true }).args, [
        '-q',
        '-c',
        '-1',
        '--zstd=strategy=5',
        '--no-row-match-finder',
        '-T0',
      ]);
      assert.deepEqual(zstdStage(1, 0, { parameters: '', noRowMatchFinder: true }).args, ['-q', '-c', '-1', '-T0']);
    });

    it('refuses levels outside 1-19 and missing or malformed recipients', () => {
      for (const level of [0, 20, 2.5]) assert.throws(() => zstdStage(level), InvalidInputError);
      assert.throws(() => ageSealer([]), EncryptionKeyError);
      assert.throws(() => ageSealer(['-o/etc/passwd']), EncryptionKeyError);
    });
  });

  describe('success', () => {
    it('pg_dump-like source → zstd → age: standard age that `age -d | zstd -d` restores, hashed in the same pass', async () => {
      // 24 MiB, half random (incompressible) and half text: several zstd blocks and age chunks.
      const input = path.join(dir, 'input.bin');
      const text = Buffer.from('INSERT INTO res_partner VALUES (1, $$Azure Interior$$);\n'.repeat(220_000));
      writeFileSync(input, Buffer.concat([randomBytes(12 * 1024 * 1024), text.subarray(0, 12 * 1024 * 1024)]));
      const dest = path.join(dir, 'dump.zst.age');
      const progress: number[] = [];
      const result = await runPipeline({
        source: { name: 'pg_dump', command: 'cat', args: [input] },
        stages: [zstdStage(3)],
        sealOutput: ageSealer([recipient]),
        dest,
        onProgress: (n) => progress.push(n),
      });
      const onDisk = await hashFile(dest);
      assert.deepEqual({ bytes: result.bytes, sha256: result.sha256 }, onDisk);
      assert.deepEqual(Object.keys(result.stderr), ['pg_dump', 'zstd']);
      assert.ok(progress.length >= 1 && progress.at(-1) === result.bytes, 'progress ends with the total');
      assert.ok(
        progress.every((n, i) => i === 0 || n >= progress[i - 1]!),
        'progress never goes back',
      );
      const restored = execFileSync('sh', ['-c', `age -d -i '${key}' '${dest}' | zstd -d -c`], { maxBuffer: 64 * 1024 * 1024 });
      assert.equal(sha256(restored), sha256(readFileSync(input)));
      assert.deepEqual(leftovers(), []);
    });

    it('a node stream as source feeds the first stage (backpressure, large input)', async () => {
      const chunks = Array.from({ length: 64 }, (_, i) => Buffer.alloc(256 * 1024, i));
      const dest = path.join(dir, 'stream.zst');
      const result = await runPipeline({ source: Readable.from(chunks), stages: [zstdStage(1)], dest });
      assert.equal(result.sha256, (await hashFile(dest)).sha256);
      const restored = execFileSync('zstd', ['-d', '-c', dest], { maxBuffer: 64 * 1024 * 1024 });
      assert.equal(sha256(restored), sha256(Buffer.concat(chunks)));
    });

    it('a non-node stream (node-tar’s minipass) works as source, and its early errors are not lost', async () => {
      const tree = path.join(dir, 'tree');
      mkdirSync(path.join(tree, 'etc'), { recursive: true });
      writeFileSync(path.join(tree, 'etc', 'odoo.conf'), '[options]\nadmin_passwd = x\n');
      const dest = path.join(dir, 'config.tar.zst');
      await runPipeline({ source: tar.c({ cwd: tree }, ['etc']) as unknown as NodeJS.ReadableStream, stages: [zstdStage(3)], dest });
      assert.match(execFileSync('sh', ['-c', `zstd -dc '${dest}' | tar -t`], { encoding: 'utf8' }), /etc\/odoo\.conf/);
      for (const stages of [[], [zstdStage(3)]]) {
        // The lstat fails while runPipeline is still checking commands, before it reads anything.
        const missing = tar.c({ cwd: tree }, ['no-such-file']) as unknown as NodeJS.ReadableStream;
        const err = await rejection(runPipeline({ source: missing, stages, dest: path.join(dir, 'missing.tar') }));
        assert.ok(err instanceof PipelineError, String(err));
        assert.match(err.message, /the source stream failed: ENOENT/);
      }
      assert.deepEqual(leftovers(), []);
    });

    it('a node stream with no stage is written as is', async () => {
      const data = randomBytes(3 * 1024 * 1024 + 7);
      const dest = path.join(dir, 'copy.bin');
      const result = await runPipeline({ source: Readable.from([data.subarray(0, 1000), data.subarray(1000)]), stages: [], dest });
      assert.deepEqual({ bytes: result.bytes, sha256: result.sha256 }, { bytes: data.length, sha256: sha256(data) });
      assert.ok(readFileSync(dest).equals(data));
    });

    it('an empty output is a valid result', async () => {
      const dest = path.join(dir, 'empty.bin');
      const result = await runPipeline({ source: { name: 'true', command: 'true', args: [] }, stages: [], dest });
      assert.deepEqual(result, { bytes: 0, sha256: sha256(Buffer.alloc(0)), stderr: { true: '' } });
      assert.equal(readFileSync(dest).length, 0);
    });

    it('children get a minimal environment plus their own env, never the parent’s secrets', async () => {
      process.env.ODOO_DR_TEST_LEAK = 'must-not-leak';
      try {
        const dest = path.join(dir, 'env.txt');
        await runPipeline({ source: { name: 'env', command: 'env', args: [], env: { PGPASSWORD: 'pw-1234' } }, stages: [], dest });
        const env = readFileSync(dest, 'utf8');
        assert.match(env, /^PATH=/m);
        assert.match(env, /^PGPASSWORD=pw-1234$/m);
        assert.doesNotMatch(env, /must-not-leak/);
      } finally {
        delete process.env.ODOO_DR_TEST_LEAK;
      }
    });

    it('hashFile streams size and SHA-256', async () => {
      const file = path.join(dir, 'hash.bin');
      const data = randomBytes(5 * 1024 * 1024 + 3);
      writeFileSync(file, data);
      assert.deepEqual(await hashFile(file), { bytes: data.length, sha256: sha256(data) });
      const cli = execFileSync('sha256sum', [file], { encoding: 'utf8' }).split(' ')[0];
      assert.equal((await hashFile(file)).sha256, cli);
    });

    it('keeps memory bounded: 256 MiB through zstd and age', async function () {
      this.timeout(120_000);
      const dest = path.join(dir, 'big.zst.age');
      global.gc?.();
      const before = process.memoryUsage().rss;
      let peak = before;
      const result = await runPipeline({
        source: { name: 'source', command: 'head', args: ['-c', String(256 * 1024 * 1024), '/dev/urandom'] },
        stages: [zstdStage(1)],
        sealOutput: ageSealer([recipient]),
        dest,
        onProgress: () => {
          peak = Math.max(peak, process.memoryUsage().rss);
        },
      });
      assert.ok(result.bytes > 256 * 1024 * 1024, 'random data does not shrink');
      assert.ok(peak - before < 96 * 1024 * 1024, `RSS grew by ${Math.round((peak - before) / 1048576)} MiB`);
      rmSync(dest);
    });
  });

  describe('failure', () => {
    it('a failing middle stage fails the pipeline, named with its code and stderr; upstream SIGPIPE is not blamed', async () => {
      const dest = path.join(dir, 'middle.out');
      const err = await rejection(
        runPipeline({
          source: { name: 'pg_dump', command: 'head', args: ['-c', String(64 * 1024 * 1024), '/dev/zero'] },
          stages: [sh('filter', 'head -c 1000 >/dev/null; echo "filter: broken input" >&2; exit 3'), { name: 'cat', command: 'cat', args: [] }],
          dest,
        }),
      );
      assert.ok(err instanceof PipelineError, String(err));
      assert.match(err.message, /stage "filter" \(sh\) exited with code 3/);
      assert.match(err.message, /filter: broken input/);
      assert.ok(!existsSync(dest) && leftovers().length === 0, 'no file, no partial file');
    });

    it('a source that fails while later stages exit 0 produces no file', async () => {
      const dest = path.join(dir, 'source-fails.out');
      const err = await rejection(
        runPipeline({
          source: sh('pg_dump', 'echo "-- partial dump"; echo "pg_dump: error: connection lost" >&2; exit 1'),
          stages: [zstdStage(3)],
          sealOutput: ageSealer([recipient]),
          dest,
        }),
      );
      assert.ok(err instanceof PipelineError);
      assert.match(err.message, /stage "pg_dump" \(sh\) exited with code 1.*\n.*connection lost/s);
      assert.ok(!existsSync(dest) && leftovers().length === 0);
    });

    it('a last stage that stops reading early (exit 0) still fails the pipeline (SIGPIPE upstream)', async () => {
      const dest = path.join(dir, 'early.out');
      const err = await rejection(
        runPipeline({
          source: { name: 'producer', command: 'head', args: ['-c', String(16 * 1024 * 1024), '/dev/zero'] },
          stages: [{ name: 'head', command: 'head', args: ['-c', '100'] }],
          dest,
        }),
      );
      assert.ok(err instanceof PipelineError);
      // Node connects children with UNIX socketpairs: the writer sees SIGPIPE/EPIPE or ECONNRESET.
      assert.match(err.message, /stage "producer" \(head\) (was killed by SIGPIPE|exited with code 1): a later stage stopped reading its output/);
      assert.ok(!existsSync(dest));
    });

    it('a first stage that does not read all of a stream source fails the pipeline', async () => {
      const dest = path.join(dir, 'early-stdin.out');
      const chunks = Array.from({ length: 64 }, () => Buffer.alloc(256 * 1024));
      const err = await rejection(runPipeline({ source: Readable.from(chunks), stages: [{ name: 'head', command: 'head', args: ['-c', '10'] }], dest }));
      assert.ok(err instanceof PipelineError);
      assert.match(err.message, /stage "head" \(head\) stopped reading its input before the end/);
      assert.ok(!existsSync(dest));
    });

    it('a stage killed by a signal is reported as such', async () => {
      const err = await rejection(runPipeline({ source: sh('crash', 'echo data; kill -9 $$'), stages: [], dest: path.join(dir, 'killed.out') }));
      assert.ok(err instanceof PipelineError);
      assert.match(err.message, /stage "crash" \(sh\) was killed by SIGKILL/);
    });

    it('a missing binary is named, and nothing is started', async () => {
      const marker = path.join(dir, 'started');
      const err = await rejection(
        runPipeline({
          source: sh('source', `touch '${marker}'`),
          stages: [{ name: 'compress', command: 'zstd-not-installed', args: [] }],
          dest: path.join(dir, 'missing.out'),
        }),
      );
      assert.ok(err instanceof PipelineError);
      assert.match(err.message, /stage "compress": command "zstd-not-installed" is not installed/);
      assert.ok(!existsSync(marker), 'the source was not started');
      assert.ok(!existsSync(path.join(dir, 'missing.out.partial')));
      const abs = await rejection(runPipeline({ source: { name: 'x', command: '/nonexistent/pg_dump', args: [] }, stages: [], dest: path.join(dir, 'x') }));
      assert.match(String(abs), /command \/nonexistent\/pg_dump is not installed/);
    });

    it('scrubs secrets from messages and stderr tails', async () => {
      const err = await rejection(
        runPipeline({
          source: sh('pg_dump', 'echo "auth failed for $PGPASSWORD with token tok-98765 key AGE-SECRET-KEY-1ABCDEF" >&2; exit 1', { PGPASSWORD: 'hunter2-pw' }),
          stages: [],
          dest: path.join(dir, 'secret.out'),
          secrets: ['tok-98765'],
        }),
      );
      assert.ok(err instanceof PipelineError);
      assert.match(err.message, /auth failed for \*\*\* with token \*\*\* key AGE-SECRET-KEY-\*\*\*/);
      assert.doesNotMatch(err.message, /hunter2|98765|ABCDEF/);
      const ok = await runPipeline({
        source: sh('noisy', 'echo "warning: using tok-98765" >&2; echo data'),
        stages: [],
        dest: path.join(dir, 'noisy.out'),
        secrets: ['tok-98765'],
      });
      assert.equal(ok.stderr.noisy, 'warning: using ***');
    });

    it('a failing source stream fails the pipeline; a catalogued error from it is kept as is', async () => {
      async function* failing(error: Error) {
        yield Buffer.alloc(1024 * 1024);
        await new Promise((r) => setTimeout(r, 20));
        throw error;
      }
      for (const stages of [[], [zstdStage(1)]]) {
        const dest = path.join(dir, `failing-source-${stages.length}.out`);
        const plain = await rejection(runPipeline({ source: Readable.from(failing(new Error('S3 connection reset'))), stages, dest }));
        assert.ok(plain instanceof PipelineError, String(plain));
        assert.match(plain.message, /the source stream failed: S3 connection reset/);
        const corrupted = new ArtifactCorruptedError('x.age is corrupted');
        assert.equal(await rejection(runPipeline({ source: Readable.from(failing(corrupted)), stages, dest })), corrupted);
        assert.ok(!existsSync(dest) && leftovers().length === 0);
      }
    });
  });

  describe('abort', () => {
    it('an aborted signal kills every child, removes the partial file and rejects with its reason', async () => {
      const pids = path.join(dir, 'pids');
      const terms = path.join(dir, 'terms');
      const dest = path.join(dir, 'aborted.out');
      const controller = new AbortController();
      // Each child notes SIGTERM and exits on it (a write to a closed pipe must not end it first).
      const onTerm = (name: string) => `trap '' PIPE; trap 'echo ${name} >> "${terms}"; exit 143' TERM`;
      const err = await rejection(
        runPipeline({
          source: sh('slow', `${onTerm('slow')}; echo $$ >> '${pids}'; while :; do echo row; sleep 0.05; done`),
          stages: [sh('filter', `${onTerm('filter')}; echo $$ >> '${pids}'; cat`)],
          dest,
          signal: controller.signal,
          // Aborted once output arrives: both children have started and written their pid by then.
          onProgress: () => controller.abort(new Error('cancelled by the operator')),
        }),
      );
      assert.equal(err.message, 'cancelled by the operator');
      assert.deepEqual(readFileSync(terms, 'utf8').trim().split('\n').sort(), ['filter', 'slow'], 'SIGTERM was enough');
      const list = readFileSync(pids, 'utf8').trim().split('\n').map(Number);
      assert.equal(list.length, 2);
      for (const pid of list) assert.ok(!alive(pid), `pid ${pid} still alive`);
      assert.ok(!existsSync(dest) && !existsSync(`${dest}.partial`));
    });

    it('a child ignoring SIGTERM gets SIGKILL, with its own children (process group)', async function () {
      this.timeout(20_000);
      const pids = path.join(dir, 'stubborn-pids');
      const terms = path.join(dir, 'stubborn-terms');
      const controller = new AbortController();
      // The background sleep inherits the ignored SIGTERM; the shell then only notes SIGTERM and carries on
      // (also writing to its closed output): only SIGKILL ends either.
      const script = `trap '' TERM; sleep 1000 & echo $! >> '${pids}'; trap '' PIPE; trap 'echo TERM >> "${terms}"' TERM; echo $$ >> '${pids}'; while :; do echo x; sleep 0.05; done`;
      const err = await rejection(
        runPipeline({
          source: sh('stubborn', script),
          stages: [],
          dest: path.join(dir, 'stubborn.out'),
          signal: controller.signal,
          onProgress: () => controller.abort(new Error('cancelled')),
        }),
      );
      assert.equal(err.message, 'cancelled');
      assert.match(readFileSync(terms, 'utf8'), /^TERM$/m, 'SIGTERM came first');
      const list = readFileSync(pids, 'utf8').trim().split('\n').map(Number);
      assert.equal(list.length, 2);
      for (const pid of list) assert.ok(!alive(pid), `pid ${pid} survived`);
    });

    it('an already aborted signal starts nothing', async () => {
      const dest = path.join(dir, 'never.out');
      const err = await rejection(runPipeline({ source: sh('x', 'echo'), stages: [], dest, signal: AbortSignal.abort() }));
      assert.equal(err.name, 'AbortError');
      assert.ok(!existsSync(`${dest}.partial`));
    });
  });

  describe('disk full', function () {
    let small: string;
    let mounted = false;

    before(function () {
      small = mkdtempSync(path.join(tmpdir(), 'odoo-dr-tmpfs-'));
      const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', small], { encoding: 'utf8' });
      mounted = mount.status === 0;
      if (!mounted) console.log(`      (cannot mount a tmpfs: ${mount.stderr.trim() || mount.error?.message}; using /dev/full instead)`);
    });
    after(function () {
      if (mounted) spawnSync('umount', [small]);
      rmSync(small, { recursive: true, force: true });
    });

    it('ENOSPC while writing → DiskFullError naming the path, no partial file left', async () => {
      const dest = path.join(small, 'dump.zst.age');
      if (!mounted) symlinkSync('/dev/full', `${dest}.partial`);
      const err = await rejection(
        runPipeline({
          source: { name: 'pg_dump', command: 'head', args: ['-c', String(8 * 1024 * 1024), '/dev/urandom'] },
          stages: [zstdStage(1)],
          sealOutput: ageSealer([recipient]),
          dest,
        }),
      );
      assert.ok(err instanceof DiskFullError, String(err));
      assert.match(err.message, new RegExp(`no space left on device while writing ${dest.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.partial`));
      assert.deepEqual(readdirSync(small), []);
    });

    it('the same disk accepts a file that fits afterwards', async function () {
      assert.ok(mounted, 'a small tmpfs could not be mounted (needs root, like the rest of the stack)');
      const dest = path.join(small, 'small.bin');
      const result = await runPipeline({ source: Readable.from([randomBytes(100_000)]), stages: [], dest });
      assert.equal(result.bytes, 100_000);
      rmSync(dest);
    });
  });
});
