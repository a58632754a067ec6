// ESLint flat config for odoo-dr (typed linting over the TypeScript sources).
//
// Besides the usual type-checked rules it enforces the dependency table of ARCHITECTURE.md §2:
//
//   folder       may import                                          must not import
//   src/         Node, libraries                                     @temporalio/*, activities/, workflows/, temporal/
//   activities/  src/, @temporalio/activity, @temporalio/common      workflows/, temporal/, any other @temporalio/*
//   workflows/   @temporalio/workflow (+ common), `import type` of    runtime imports of src/, activities/, Node
//                anything except temporal/                           built-ins and the other @temporalio/* packages
//   temporal/    everything                                          (nothing imports it, not even for types)
//
// Lint covers `import`, `export … from`, `import x = require()` (through
// @typescript-eslint/no-restricted-imports) and literal dynamic `import()` (through no-restricted-syntax);
// `require()` is already banned in TypeScript by @typescript-eslint/no-require-imports. The same table is
// checked on the resolved import graph by test/architecture/imports.test.ts.
import { builtinModules } from 'node:module';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const TS_SOURCES = ['{src,activities,workflows,temporal,test,bench,scripts}/**/*.{ts,mts,cts}'];
const LAYERS = ['src', 'activities', 'workflows', 'temporal'];
/** Files deeper than this below a layer folder get the depth-agnostic (slightly broader) patterns. */
const MAX_EXACT_DEPTH = 8;
const WHY = 'see ARCHITECTURE.md §2';

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
  `^(?:${builtinModules.filter((m) => !m.startsWith('_')).map(escapeRegex).join('|')})(?:/|$)`,
];

/** The restricted patterns of one layer, for a file `depth` folders below it. */
function restrictionsFor(layer, depth) {
  switch (layer) {
    case 'src':
      return [
        { regex: '^@temporalio/', message: `src/ is the domain core and never imports @temporalio/* (${WHY}).` },
        {
          regex: reaching(['activities', 'workflows', 'temporal'], depth),
          message: `src/ is the domain core and never imports activities/, workflows/ or temporal/ (${WHY}).`,
        },
      ];
    case 'activities':
      return [
        {
          regex: '^@temporalio/(?!(?:activity|common)(?:/|$))',
          message: `activities/ may use only @temporalio/activity and @temporalio/common (${WHY}).`,
        },
        {
          regex: reaching(['workflows', 'temporal'], depth),
          message: `activities/ never imports workflows/ or temporal/ (${WHY}).`,
        },
      ];
    case 'workflows':
      // Keep the allowTypeImports patterns disjoint from the strict one: the rule allows a type import
      // as soon as ANY matching pattern has allowTypeImports.
      return [
        {
          regex: reaching(['src', 'activities'], depth),
          allowTypeImports: true,
          message: `workflows/ must be deterministic: only \`import type\` from src/ and activities/ (${WHY}).`,
        },
        {
          regex: reaching(['temporal'], depth),
          message: `temporal/ is the composition root: workflows/ never imports it, not even types (${WHY}).`,
        },
        ...NODE_BUILTIN.map((regex) => ({
          regex,
          allowTypeImports: true,
          message: `workflows/ runs in the deterministic sandbox: no runtime Node built-ins, only \`import type\` (${WHY}).`,
        })),
        {
          regex: '^@temporalio/(?!(?:workflow|common)(?:/|$))',
          allowTypeImports: true,
          message: `workflows/ may import at run time only @temporalio/workflow (and @temporalio/common) (${WHY}).`,
        },
      ];
    default:
      return [];
  }
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
    if (layer === 'temporal') continue; // may import everything
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
      '@typescript-eslint/consistent-type-imports': [
        'error',
        { prefer: 'type-imports', fixStyle: 'inline-type-imports', disallowTypeAnnotations: true },
      ],
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
