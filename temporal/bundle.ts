/**
 * The workflow bundle, built ahead of time (`npm run bundle`): a worker that finds a bundle matching
 * the compiled workflows starts without running webpack (seconds of CPU and ~250 MiB of RSS at every
 * start). A bundle is used only when its fingerprint — every compiled workflow file and the SDK
 * version — equals the code beside it: a stale bundle would run other workflow code than the one
 * deployed, which replay would reject as non-determinism. Otherwise the worker bundles at start.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Compiled workflows entry (dist/workflows/index.js next to dist/temporal/). */
export const WORKFLOWS_DIR = path.resolve(__dirname, '../workflows');
/** Where `npm run bundle` writes the bundle and the worker looks for it. */
export const BUNDLE_PATH = path.resolve(__dirname, '../workflow-bundle.js');

const stampPath = (bundle: string) => bundle.replace(/\.js$/, '.json');

function sdkVersion(): string {
  const lib = path.dirname(require.resolve('@temporalio/workflow'));
  return (JSON.parse(readFileSync(path.join(lib, '..', 'package.json'), 'utf8')) as { version: string }).version;
}

/** SHA-256 over every compiled workflow file (name and content) and the SDK version. */
export function workflowsFingerprint(dir: string = WORKFLOWS_DIR): string {
  const hash = createHash('sha256').update(`@temporalio/workflow ${sdkVersion()}\n`);
  const walk = (d: string): string[] =>
    readdirSync(d, { withFileTypes: true })
      .flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : e.name.endsWith('.js') ? [path.join(d, e.name)] : []))
      .sort();
  for (const file of walk(dir))
    hash
      .update(`${path.relative(dir, file)}\n`)
      .update(readFileSync(file))
      .update('\n');
  return hash.digest('hex');
}

interface Stamp {
  fingerprint: string;
  builtAt: string;
  bytes: number;
}

/** The prebuilt bundle when it matches the compiled workflows; otherwise why not (the worker then bundles at start). */
export function prebuiltWorkflowBundle(bundle: string = BUNDLE_PATH, dir: string = WORKFLOWS_DIR): { codePath: string; builtAt: string } | { reason: string } {
  if (!existsSync(bundle) || !existsSync(stampPath(bundle)))
    return { reason: `no prebuilt workflow bundle (${bundle}): run \`npm run bundle\` for a faster start` };
  let stamp: Stamp;
  try {
    stamp = JSON.parse(readFileSync(stampPath(bundle), 'utf8')) as Stamp;
  } catch {
    return { reason: `${stampPath(bundle)} is unreadable: run \`npm run bundle\`` };
  }
  if (stamp.fingerprint !== workflowsFingerprint(dir)) {
    return { reason: `the prebuilt workflow bundle (${stamp.builtAt}) does not match the compiled workflows: run \`npm run bundle\` after each build` };
  }
  return { codePath: bundle, builtAt: stamp.builtAt };
}

/** Bundles the compiled workflows into `bundle` (temp file, rename) with its fingerprint beside it. */
export async function writeWorkflowBundle(bundle: string = BUNDLE_PATH, dir: string = WORKFLOWS_DIR): Promise<Stamp> {
  const { bundleWorkflowCode, DefaultLogger } = await import('@temporalio/worker');
  const fingerprint = workflowsFingerprint(dir);
  const { code } = await bundleWorkflowCode({ workflowsPath: path.join(dir, 'index.js'), logger: new DefaultLogger('WARN') });
  const stamp: Stamp = { fingerprint, builtAt: new Date().toISOString(), bytes: Buffer.byteLength(code) };
  await writeFile(`${bundle}.tmp`, code);
  await rename(`${bundle}.tmp`, bundle);
  await writeFile(stampPath(bundle), `${JSON.stringify(stamp, null, 2)}\n`);
  return stamp;
}

if (require.main === module) {
  const out = process.argv[2] ? path.resolve(process.argv[2]) : BUNDLE_PATH;
  writeWorkflowBundle(out).then(
    (s) => process.stdout.write(`workflow bundle written: ${out} (${(s.bytes / 1024).toFixed(0)} KiB, fingerprint ${s.fingerprint.slice(0, 12)})\n`),
    (err: unknown) => {
      process.stderr.write(`bundle failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
