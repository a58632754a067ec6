/**
 * Architecture test: walks the import graph of the TypeScript sources and enforces the dependency
 * table of ARCHITECTURE.md §2, read from test/architecture/layers.json (the same file eslint.config.mjs
 * turns into no-restricted-imports patterns):
 *
 *   src/         Node, libraries; never @temporalio/*, activities/, workflows/, temporal/ (types included)
 *   activities/  src/, @temporalio/activity, @temporalio/common; never workflows/, temporal/, other @temporalio/*
 *   workflows/   @temporalio/workflow (+ common), `import type` from src/ and activities/; no runtime import of
 *                src/, activities/, Node built-ins or other @temporalio/* packages; never temporal/ (types included)
 *   temporal/    everything; nothing in src/, activities/, workflows/ imports it
 *
 * Specifiers are read with the TypeScript parser: `import`, `export … from`, `import x = require()`,
 * `require('…')`, `import('…')` and `typeof import('…')` types. An import is type-only when it is
 * `import type …`, `export type …`, or names only `type` specifiers (`import { type A, type B }`),
 * which TypeScript erases from the emitted JavaScript.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import ts from 'typescript';

/** The four layer folders (test/architecture/layers.json describes what each may import). */
export const LAYERS = ['src', 'activities', 'workflows', 'temporal'] as const;
export type Layer = (typeof LAYERS)[number];

export type ImportKind = 'import' | 'export' | 'import-equals' | 'require' | 'dynamic-import' | 'import-type';

export interface ImportRef {
  /** Importing file, relative to the repository root, with '/' separators. */
  file: string;
  line: number;
  specifier: string;
  kind: ImportKind;
  /** Erased by TypeScript: `import type`, `import { type A }`-only, `export type … from`, `typeof import()`. */
  typeOnly: boolean;
}

export interface Violation extends ImportRef {
  /** Stable rule id, e.g. `src/no-temporalio`. */
  rule: string;
  /** What the rule says. */
  message: string;
}

export type Target =
  | { type: 'layer'; layer: Layer }
  | { type: 'local' } // a relative path that is not in one of the four layers (package.json, test/, …)
  | { type: 'builtin' }
  | { type: 'package'; name: string };

const SOURCE_EXTENSIONS = ['.ts', '.tsx', '.mts', '.cts'];
const NODE_BUILTINS = new Set(builtinModules);

/** The repository root: the first folder at or above `start` holding both package.json and tsconfig.json. */
export function findRepoRoot(start: string): string {
  let dir = path.resolve(start);
  for (;;) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'tsconfig.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no package.json + tsconfig.json found at or above ${start}`);
    dir = parent;
  }
}

/** TypeScript sources of one layer folder (absolute paths, sorted). */
export function listSources(root: string, layer: Layer): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    if (!existsSync(dir)) return;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile() && SOURCE_EXTENSIONS.some((ext) => entry.name.endsWith(ext))) out.push(full);
    }
  };
  walk(path.join(root, layer));
  return out.sort();
}

function scriptKind(file: string): ts.ScriptKind {
  return file.endsWith('.tsx') ? ts.ScriptKind.TSX : ts.ScriptKind.TS;
}

/** Every module specifier written in one source text. `file` is only used for the result and the parser. */
export function parseImports(file: string, text: string): ImportRef[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, scriptKind(file));
  const refs: ImportRef[] = [];
  const add = (spec: ts.Node, kind: ImportKind, typeOnly: boolean): void => {
    if (!ts.isStringLiteralLike(spec)) return; // computed specifiers cannot be checked statically
    const line = sf.getLineAndCharacterOfPosition(spec.getStart(sf)).line + 1;
    refs.push({ file, line, specifier: spec.text, kind, typeOnly });
  };

  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      let typeOnly = false;
      if (clause) {
        const named = clause.namedBindings;
        typeOnly =
          clause.isTypeOnly ||
          (clause.name === undefined &&
            named !== undefined &&
            ts.isNamedImports(named) &&
            named.elements.length > 0 &&
            named.elements.every((e) => e.isTypeOnly));
      }
      add(node.moduleSpecifier, 'import', typeOnly);
    } else if (ts.isExportDeclaration(node)) {
      if (node.moduleSpecifier) {
        const clause = node.exportClause;
        const typeOnly =
          node.isTypeOnly || (clause !== undefined && ts.isNamedExports(clause) && clause.elements.length > 0 && clause.elements.every((e) => e.isTypeOnly));
        add(node.moduleSpecifier, 'export', typeOnly);
      }
    } else if (ts.isImportEqualsDeclaration(node)) {
      if (ts.isExternalModuleReference(node.moduleReference)) {
        add(node.moduleReference.expression, 'import-equals', node.isTypeOnly);
      }
    } else if (ts.isCallExpression(node)) {
      const [first] = node.arguments;
      if (first !== undefined) {
        if (node.expression.kind === ts.SyntaxKind.ImportKeyword) add(first, 'dynamic-import', false);
        else if (ts.isIdentifier(node.expression) && node.expression.text === 'require') add(first, 'require', false);
      }
    } else if (ts.isImportTypeNode(node)) {
      const arg = node.argument;
      if (ts.isLiteralTypeNode(arg)) add(arg.literal, 'import-type', true);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return refs;
}

/** What a specifier written in `fromFile` (absolute) points at. */
export function classify(root: string, fromFile: string, specifier: string): Target {
  if (specifier === '.' || specifier === '..' || specifier.startsWith('./') || specifier.startsWith('../') || path.isAbsolute(specifier)) {
    const target = path.resolve(path.dirname(fromFile), specifier);
    const rel = path.relative(root, target);
    if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) return { type: 'local' };
    const top = rel.split(path.sep)[0];
    const layer = LAYERS.find((l) => l === top);
    return layer ? { type: 'layer', layer } : { type: 'local' };
  }
  if (specifier.startsWith('node:') || NODE_BUILTINS.has(specifier)) return { type: 'builtin' };
  const parts = specifier.split('/');
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? specifier);
  return { type: 'package', name };
}

type Allowance = 'never' | 'type-only';
interface LayerRules {
  why: string;
  imports: Partial<Record<Layer, Allowance>>;
  temporalio: { runtime: string[] | 'any'; other: Allowance };
  builtins: 'any' | 'type-only';
}

/** The dependency table, the one copy that eslint.config.mjs reads too. */
export const TABLE = JSON.parse(readFileSync(path.join(findRepoRoot(__dirname), 'test/architecture/layers.json'), 'utf8')) as {
  source: string;
  layers: Record<Layer, LayerRules>;
};
const WHY = `(${TABLE.source})`;

/** The rule an import breaks, or undefined. `from` is the importing file's layer. */
export function ruleFor(from: Layer, target: Target, typeOnly: boolean): { rule: string; message: string } | undefined {
  const { why, imports, temporalio, builtins } = TABLE.layers[from];
  if (target.type === 'layer') {
    const allowed = imports[target.layer];
    if (allowed === 'never') return { rule: `${from}/no-${target.layer}`, message: `${why}: never imports ${target.layer}/, not even types ${WHY}` };
    if (allowed === 'type-only' && !typeOnly)
      return { rule: `${from}/type-only-${target.layer}`, message: `${why}: only \`import type\` from ${target.layer}/ ${WHY}` };
    return undefined;
  }
  if (target.type === 'builtin') {
    if (builtins === 'type-only' && !typeOnly) return { rule: `${from}/no-node-builtins`, message: `${why}: no runtime import of Node built-ins ${WHY}` };
    return undefined;
  }
  if (target.type === 'package' && target.name.startsWith('@temporalio/') && temporalio.runtime !== 'any' && !temporalio.runtime.includes(target.name)) {
    if (temporalio.other === 'type-only' && typeOnly) return undefined;
    if (temporalio.runtime.length === 0) return { rule: `${from}/no-temporalio`, message: `${why}: never imports @temporalio/* ${WHY}` };
    const only = temporalio.runtime.map((p) => p.replace('@temporalio/', '')).join('-or-');
    return { rule: `${from}/temporalio-${only}-only`, message: `${why}: at run time only ${temporalio.runtime.join(' and ')}, not ${target.name} ${WHY}` };
  }
  return undefined;
}

export interface ImportGraph {
  /** Source files per layer, relative to the root. */
  files: Record<Layer, string[]>;
  imports: ImportRef[];
}

/** Reads and parses every TypeScript source of the four layers below `root`. */
export function collectImports(root: string): ImportGraph {
  const files = { src: [], activities: [], workflows: [], temporal: [] } as Record<Layer, string[]>;
  const imports: ImportRef[] = [];
  for (const layer of LAYERS) {
    for (const abs of listSources(root, layer)) {
      const rel = path.relative(root, abs).split(path.sep).join('/');
      files[layer].push(rel);
      imports.push(...parseImports(rel, readFileSync(abs, 'utf8')));
    }
  }
  return { files, imports };
}

/** Every import below `root` that breaks the dependency table. */
export function checkImportRules(root: string): Violation[] {
  const violations: Violation[] = [];
  for (const ref of collectImports(root).imports) {
    const from = LAYERS.find((l) => ref.file.startsWith(`${l}/`));
    if (!from) continue;
    const broken = ruleFor(from, classify(root, path.join(root, ref.file), ref.specifier), ref.typeOnly);
    if (broken) violations.push({ ...ref, ...broken });
  }
  return violations;
}

/** The file a relative specifier resolves to (`x.ts`, `x/index.ts`), or undefined (packages, built-ins, non-sources). */
function resolveSource(root: string, fromRel: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  const base = path.resolve(root, path.dirname(fromRel), specifier);
  for (const candidate of [...SOURCE_EXTENSIONS.map((e) => base + e), ...SOURCE_EXTENSIONS.map((e) => path.join(base, `index${e}`))]) {
    if (existsSync(candidate)) return path.relative(root, candidate).split(path.sep).join('/');
  }
  return undefined;
}

/**
 * Import cycles between the sources of the four layers, type-only imports included (a type cycle is
 * still two modules that cannot be understood apart): each strongly connected component of the file
 * graph with more than one file, as its files sorted (Tarjan's algorithm).
 */
export function findImportCycles(root: string): string[][] {
  const graph = new Map<string, Set<string>>();
  for (const ref of collectImports(root).imports) {
    const to = resolveSource(root, ref.file, ref.specifier);
    if (!graph.has(ref.file)) graph.set(ref.file, new Set());
    if (to && to !== ref.file) graph.get(ref.file)!.add(to);
  }
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const connect = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) cycles.push(component.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) connect(v);
  return cycles;
}

export function formatViolations(violations: readonly Violation[]): string {
  return violations.map((v) => `  ${v.file}:${v.line} → '${v.specifier}' [${v.typeOnly ? 'type-only ' : ''}${v.kind}] ${v.rule}: ${v.message}`).join('\n');
}

function assertNoViolations(violations: readonly Violation[]): void {
  if (violations.length > 0) {
    assert.fail(`${violations.length} import(s) break the dependency table:\n${formatViolations(violations)}`);
  }
}

describe('architecture: import graph', () => {
  describe('on the repository', () => {
    const root = findRepoRoot(__dirname);

    it('finds the sources of every layer (so the check below is not vacuous)', () => {
      const { files, imports } = collectImports(root);
      for (const layer of LAYERS) assert.ok(files[layer].length > 0, `no TypeScript sources found in ${root}/${layer}/`);
      assert.ok(imports.length > 0, 'no imports found');
    });

    it('reads a table (test/architecture/layers.json, shared with lint) that describes exactly the four layers', () => {
      assert.deepEqual(Object.keys(TABLE.layers).sort(), [...LAYERS].sort());
    });

    it('obeys the dependency table of ARCHITECTURE.md §2', () => {
      assertNoViolations(checkImportRules(root));
    });

    it('has no import cycles (type-only imports included)', () => {
      const cycles = findImportCycles(root);
      assert.deepEqual(cycles, [], `import cycles:\n${cycles.map((c) => `  ${c.join(' ↔ ')}`).join('\n')}`);
    });
  });

  describe('findImportCycles on a synthetic tree', () => {
    it('finds a type-only cycle and a three-file runtime cycle, and not a diamond', () => {
      const root = mkdtempSync(path.join(tmpdir(), 'odoo-dr-cycles-'));
      try {
        const write = (rel: string, text: string): void => {
          mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
          writeFileSync(path.join(root, rel), text);
        };
        write('package.json', '{}');
        write('tsconfig.json', '{}');
        write('src/a.ts', "import type { B } from './b';\nexport interface A { b?: B }\n");
        write('src/b.ts', "import type { A } from './a';\nexport interface B { a?: A }\n");
        write('src/x/index.ts', "import { y } from '../y';\nexport const x = y;\n");
        write('src/y.ts', "import { z } from './z';\nexport const y = z;\n");
        write('src/z.ts', "import { x } from './x';\nexport const z = () => x;\n");
        write('src/top.ts', "import { l } from './left';\nimport { r } from './right';\nexport const t = l + r;\n");
        write('src/left.ts', "import { base } from './base';\nexport const l = base;\n");
        write('src/right.ts', "import { base } from './base';\nexport const r = base;\n");
        write('src/base.ts', 'export const base = 1;\n');
        assert.deepEqual(
          findImportCycles(root)
            .map((c) => c.join(' '))
            .sort(),
          ['src/a.ts src/b.ts', 'src/x/index.ts src/y.ts src/z.ts'],
        );
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    });
  });

  describe('checkImportRules on a synthetic tree', () => {
    let root = '';
    const write = (rel: string, text: string): void => {
      const full = path.join(root, rel);
      mkdirSync(path.dirname(full), { recursive: true });
      writeFileSync(full, text);
    };
    /** Violations as `file:line specifier rule`, for compact assertions. */
    const found = (): string[] => checkImportRules(root).map((v) => `${v.file}:${v.line} ${v.specifier} ${v.rule}`);

    before(() => {
      root = mkdtempSync(path.join(tmpdir(), 'odoo-dr-arch-'));
      // src/: Node and libraries are fine; Temporal and the outer layers are not (types included).
      write('src/y.ts', 'export const x = 1;\nexport interface Y { a: string }\n');
      write(
        'src/ok.ts',
        [
          "import { readFileSync } from 'node:fs';",
          "import path from 'path';",
          "import { z } from 'zod';",
          "import { x, type Y } from './y';",
          "import { helper } from './activities/helper';", // src/activities/, not the top-level layer
          'export { readFileSync, path, z, x, helper };',
          'export type { Y };',
        ].join('\n'),
      );
      write('src/activities/helper.ts', 'export const helper = 1;\n');
      write('src/bad.ts', "import { Client } from '@temporalio/client';\nexport const c = Client;\n");
      write(
        'src/deep/bad.ts',
        [
          "import type { Worker } from '@temporalio/worker';",
          "import type { A } from '../../activities';",
          "const cli = require('../../temporal/cli');",
          "export const w = import('../../workflows/definitions');",
          "export type T = typeof import('@temporalio/common');",
        ].join('\n'),
      );
      // activities/: src/, @temporalio/activity and /common; not workflows/, temporal/, other @temporalio/*.
      write(
        'activities/ok.ts',
        [
          "import { Context } from '@temporalio/activity';",
          "import { ApplicationFailure } from '@temporalio/common';",
          "import { x } from '../src/y';",
          "import { createHash } from 'node:crypto';",
        ].join('\n'),
      );
      write('activities/index.ts', 'export interface A { n: number }\n');
      write(
        'activities/bad.ts',
        [
          "import { proxyActivities } from '@temporalio/workflow';",
          "import { WorkflowClient } from '@temporalio/client';",
          "import { workflowIds } from '../workflows/definitions';",
          "export * from '../temporal/worker';",
        ].join('\n'),
      );
      // workflows/: runtime only @temporalio/workflow (+ common) and workflows/ itself; types from anywhere but temporal/.
      write(
        'workflows/ok.ts',
        [
          "import { proxyActivities, sleep } from '@temporalio/workflow';",
          "import { ApplicationFailure } from '@temporalio/common';",
          "import type { Y } from '../src/y';",
          "import { type A } from '../activities';",
          "import type { Client } from '@temporalio/client';",
          "import type { Stats } from 'node:fs';",
          "import { options } from './options';",
          "export type { Y as Why } from '../src/y';",
          "export { type A as Ay } from '../activities';",
        ].join('\n'),
      );
      write('workflows/options.ts', 'export const options = {};\n');
      write('workflows/definitions.ts', 'export const workflowIds = {};\n');
      write(
        'workflows/bad.ts',
        [
          "import { x } from '../src/y';",
          "import { type Y, x as x2 } from '../src/y';", // one runtime binding: not type-only
          "import { createHash } from 'node:crypto';",
          "import fs from 'fs';",
          "import { Context } from '@temporalio/activity';",
          "import type { Cli } from '../temporal/cli';",
          "export { A } from '../activities';",
          "import '../src/side-effect';",
          "import activities = require('../activities');",
        ].join('\n'),
      );
      // temporal/: everything.
      write(
        'temporal/cli.ts',
        [
          "import { Client } from '@temporalio/client';",
          "import { Worker } from '@temporalio/worker';",
          "import { createActivities } from '../activities';",
          "import { workflowIds } from '../workflows/definitions';",
          "import { x } from '../src/y';",
          "import os from 'node:os';",
        ].join('\n'),
      );
      // Outside the four layers nothing is checked.
      write('test/any.test.ts', "import '../temporal/cli';\nimport '@temporalio/testing';\n");
    });

    after(() => {
      if (root) rmSync(root, { recursive: true, force: true });
    });

    it('reports a src/ file importing @temporalio/client', () => {
      assert.ok(found().includes('src/bad.ts:1 @temporalio/client src/no-temporalio'), found().join('\n'));
    });

    it('reports src/ reaching the outer layers and Temporal by any kind of import, types included', () => {
      const v = found().filter((s) => s.startsWith('src/deep/'));
      assert.deepEqual(v, [
        'src/deep/bad.ts:1 @temporalio/worker src/no-temporalio',
        'src/deep/bad.ts:2 ../../activities src/no-activities',
        'src/deep/bad.ts:3 ../../temporal/cli src/no-temporal',
        'src/deep/bad.ts:4 ../../workflows/definitions src/no-workflows',
        'src/deep/bad.ts:5 @temporalio/common src/no-temporalio',
      ]);
    });

    it('reports a workflows/ file with a runtime import from ../src', () => {
      assert.ok(found().includes('workflows/bad.ts:1 ../src/y workflows/type-only-src'), found().join('\n'));
      assert.ok(found().includes('workflows/bad.ts:2 ../src/y workflows/type-only-src'), found().join('\n'));
    });

    it('does not report `import type` (nor `import { type X }`-only) from ../src or ../activities in workflows/', () => {
      assert.deepEqual(
        found().filter((s) => s.startsWith('workflows/ok.ts')),
        [],
      );
    });

    it('reports a runtime Node built-in import in workflows/, with or without the node: prefix', () => {
      assert.ok(found().includes('workflows/bad.ts:3 node:crypto workflows/no-node-builtins'), found().join('\n'));
      assert.ok(found().includes('workflows/bad.ts:4 fs workflows/no-node-builtins'), found().join('\n'));
    });

    it('reports every other breach in workflows/ and activities/, and nothing else', () => {
      assert.deepEqual(
        found()
          .filter((s) => !s.startsWith('src/deep/'))
          .sort(),
        [
          'src/bad.ts:1 @temporalio/client src/no-temporalio',
          'activities/bad.ts:1 @temporalio/workflow activities/temporalio-activity-or-common-only',
          'activities/bad.ts:2 @temporalio/client activities/temporalio-activity-or-common-only',
          'activities/bad.ts:3 ../workflows/definitions activities/no-workflows',
          'activities/bad.ts:4 ../temporal/worker activities/no-temporal',
          'workflows/bad.ts:1 ../src/y workflows/type-only-src',
          'workflows/bad.ts:2 ../src/y workflows/type-only-src',
          'workflows/bad.ts:3 node:crypto workflows/no-node-builtins',
          'workflows/bad.ts:4 fs workflows/no-node-builtins',
          'workflows/bad.ts:5 @temporalio/activity workflows/temporalio-workflow-or-common-only',
          'workflows/bad.ts:6 ../temporal/cli workflows/no-temporal',
          'workflows/bad.ts:7 ../activities workflows/type-only-activities',
          'workflows/bad.ts:8 ../src/side-effect workflows/type-only-src',
          'workflows/bad.ts:9 ../activities workflows/type-only-activities',
        ].sort(),
      );
    });

    it('formats each violation as file:line → specifier with the rule broken', () => {
      const text = formatViolations(checkImportRules(root));
      assert.match(text, /src\/bad\.ts:1 → '@temporalio\/client' \[import\] src\/no-temporalio: src\/ is the domain core/);
      assert.match(text, /workflows\/bad\.ts:6 → '\.\.\/temporal\/cli' \[type-only import\] workflows\/no-temporal/);
    });
  });
});
