// ESLint flat config for odoo-dr (typed linting over the TypeScript sources).
//
// Besides the usual type-checked rules it enforces the dependency table of ARCHITECTURE.md §2, read
// from test/architecture/layers.json: the one copy of the table, which test/architecture/imports.test.ts
// also checks on the resolved import graph (types included, and cycles).
//
// Lint covers `import`, `export … from`, `import x = require()` (through
// @typescript-eslint/no-restricted-imports) and literal dynamic `import()` (through no-restricted-syntax);
// `require()` is already banned in TypeScript by @typescript-eslint/no-require-imports.
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const TS_SOURCES = ['{src,activities,workflows,temporal,test,bench,scripts}/**/*.{ts,mts,cts}'];
const TABLE = JSON.parse(readFileSync(new URL('./test/architecture/layers.json', import.meta.url), 'utf8'));
const LAYERS = Object.keys(TABLE.layers);
/** Files deeper than this below a layer folder get the depth-agnostic (slightly broader) patterns. */
const MAX_EXACT_DEPTH = 8;
const WHY = `see ${TABLE.source}`;

const escapeRegex = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Regex matching a relative specifier that, from a file `depth` folders below its layer folder,
 * reaches one of the top-level `folders` (e.g. depth 0, src/x.ts: `../activities`, `./../activities/y`).
 * With depth undefined: any number of `../` (used only for files nested deeper than MAX_EXACT_DEPTH).
 */
function reaching(folders, depth) {
  const up = depth === undefined ? '(?:\\.\\./)+' : `(?:\\.\\./){${depth + 1}}`;
  return `^(?:\\./)?${up}(?:${folders.join('|')})(?:/|$)`;
}

const NODE_BUILTIN = [
  '^node:',
  `^(?:${builtinModules
    .filter((m) => !m.startsWith('_'))
    .map(escapeRegex)
    .join('|')})(?:/|$)`,
];

/**
 * The restricted patterns of one layer, for a file `depth` folders below it. Each pattern covers one
 * target (a layer, the @temporalio packages, the built-ins), so that a type-only allowance never
 * widens a strict pattern (the rule allows a type import as soon as ANY matching pattern allows it).
 */
function restrictionsFor(layer, depth) {
  const { why, imports, temporalio, builtins } = TABLE.layers[layer];
  const patterns = Object.entries(imports).map(([target, allowed]) => ({
    regex: reaching([target], depth),
    ...(allowed === 'type-only' ? { allowTypeImports: true } : {}),
    message: allowed === 'type-only' ? `${why}: only \`import type\` from ${target}/ (${WHY}).` : `${why}: never imports ${target}/, not even types (${WHY}).`,
  }));
  if (temporalio.runtime !== 'any') {
    const runtime = temporalio.runtime.map((p) => escapeRegex(p.replace('@temporalio/', '')));
    patterns.push({
      regex: runtime.length ? `^@temporalio/(?!(?:${runtime.join('|')})(?:/|$))` : '^@temporalio/',
      ...(temporalio.other === 'type-only' ? { allowTypeImports: true } : {}),
      message: runtime.length
        ? `${why}: at run time only ${temporalio.runtime.join(' and ')} of @temporalio/* (${WHY}).`
        : `${why}: never imports @temporalio/* (${WHY}).`,
    });
  }
  if (builtins === 'type-only') {
    patterns.push(
      ...NODE_BUILTIN.map((regex) => ({ regex, allowTypeImports: true, message: `${why}: no runtime Node built-ins, only \`import type\` (${WHY}).` })),
    );
  }
  return patterns;
}

/** The same patterns for literal dynamic `import('…')`, which no-restricted-imports does not see. */
function dynamicImportSelectors(patterns) {
  return patterns.map(({ regex, message }) => ({
    // esquery regex literals cannot contain '/', hence \x2F.
    selector: `ImportExpression[source.type='Literal'][source.value=/${regex.replaceAll('/', '\\x2F')}/]`,
    message: `${message} (dynamic import)`,
  }));
}

function layerConfigs() {
  const configs = [];
  for (const layer of LAYERS) {
    if (restrictionsFor(layer, undefined).length === 0) continue; // temporal/ may import everything
    const entries = [[`${layer}/**/*.{ts,mts,cts}`, undefined]];
    for (let depth = 0; depth <= MAX_EXACT_DEPTH; depth++) {
      entries.push([`${layer}/${'*/'.repeat(depth)}*.{ts,mts,cts}`, depth]);
    }
    // Later entries override earlier ones, so the exact-depth patterns win where they apply.
    for (const [glob, depth] of entries) {
      const patterns = restrictionsFor(layer, depth);
      configs.push({
        name: `odoo-dr/layers/${layer}${depth === undefined ? '' : `/depth-${depth}`}`,
        files: [glob],
        rules: {
          '@typescript-eslint/no-restricted-imports': ['error', { patterns }],
          'no-restricted-syntax': ['error', ...dynamicImportSelectors(patterns)],
        },
      });
    }
  }
  return configs;
}

export default tseslint.config(
  {
    name: 'odoo-dr/ignores',
    // Plain JavaScript (bin/, scripts/*.js, this file) is not linted; dist/ is compiled output.
    ignores: ['dist/**', 'node_modules/**', 'coverage/**', '**/*.js', '**/*.cjs', '**/*.mjs', '.stack/**'],
  },
  {
    name: 'odoo-dr/typescript',
    files: TS_SOURCES,
    extends: [js.configs.recommended, ...tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: {
      reportUnusedDisableDirectives: 'error',
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { prefer: 'type-imports', fixStyle: 'inline-type-imports', disallowTypeAnnotations: true }],
      '@typescript-eslint/consistent-type-exports': ['error', { fixMixedExportsWithInlineTypeSpecifier: true }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          args: 'after-used',
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
      // Numbers, booleans, RegExps and possibly-undefined values (noUncheckedIndexedAccess makes every
      // indexed read `T | undefined`) are fine in messages; `any`, `unknown` and objects ("[object Object]") are not.
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true, allowNullish: true, allowRegExp: true, allowAny: false },
      ],
      // The layer rules below use the type-aware variant; the core rule would not know `import type`.
      'no-restricted-imports': 'off',
    },
  },
  ...layerConfigs(),
);
