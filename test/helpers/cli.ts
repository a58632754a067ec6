/** Runs the real `odoo-dr` binary (bin/odoo-dr over dist/) as operators do, with the local stack's configuration. */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { LOCAL_CONFIG_PATH, REPO_ROOT } from './config';

export const BIN = path.join(REPO_ROOT, 'bin/odoo-dr');

export interface CliRun {
  child: ChildProcessWithoutNullStreams;
  /** Everything printed so far (stdout and stderr interleaved). */
  out: () => string;
  result: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; out: string }>;
}

/** `odoo-dr --config <local stack> ...args`, the environment overriding the file (DR_CONFIG cleared). */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, opts: { config?: string | null } = {}): CliRun {
  const configArgs = opts.config === null ? [] : ['--config', opts.config ?? LOCAL_CONFIG_PATH];
  const child = spawn(process.execPath, [BIN, ...configArgs, ...args], { cwd: REPO_ROOT, env: { ...process.env, DR_CONFIG: '', ...env } });
  let stdout = '';
  let stderr = '';
  let out = '';
  child.stdout.on('data', (d: Buffer) => ((stdout += d.toString()), (out += d.toString())));
  child.stderr.on('data', (d: Buffer) => ((stderr += d.toString()), (out += d.toString())));
  const result = new Promise<Awaited<CliRun['result']>>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, out })));
  return { child, out: () => out, result };
}

/** How long a worker may take to start polling (it bundles the workflow code unless a prebuilt bundle exists). */
export const WORKER_START_TIMEOUT_MS = 180_000;

/** Starts `odoo-dr worker` and resolves once it polls its task queue; a worker that does not is killed, with its output in the error. */
export async function startCliWorker(env: NodeJS.ProcessEnv, extraArgs: string[] = [], opts: { config?: string | null } = {}): Promise<CliRun> {
  const worker = runCli(['worker', ...extraArgs], env, opts);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      worker.child.kill('SIGKILL');
      reject(new Error(`worker did not start polling within ${WORKER_START_TIMEOUT_MS / 1000} s: ${worker.out()}`));
    }, WORKER_START_TIMEOUT_MS);
    const check = () => {
      if (!worker.out().includes("state: 'RUNNING'")) return;
      clearTimeout(timer);
      resolve();
    };
    worker.child.stdout.on('data', check);
    worker.child.stderr.on('data', check);
    worker.child.on('close', (code) => {
      clearTimeout(timer);
      reject(new Error(`worker exited early (${code}): ${worker.out()}`));
    });
  });
  return worker;
}

/** The workflow ID a command prints on stderr when it starts one (`(workflow <id>`). */
export function workflowIdOf(run: CliRun, prefix: string): Promise<string> {
  const pattern = new RegExp(`\\(workflow (${prefix}[^)\\s,]+)`);
  return new Promise<string>((resolve, reject) => {
    const check = () => {
      const m = pattern.exec(run.out());
      if (m) resolve(m[1]!);
    };
    check();
    run.child.stderr.on('data', check);
    run.child.on('close', () => reject(new Error(`the command exited before printing a workflow id: ${run.out()}`)));
  });
}
