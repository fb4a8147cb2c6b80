// Lint: typescript-eslint's type-aware recommended rules. Floating promises are errors because
// an unhandled rejection in the resident process is a crash.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** An "--option" in a string: at the start, after a space, a quote, a backtick or "(" (esquery regex). */
const CLI_OPTION = String.raw`/(^|\s|["'\u0060(])--[a-z]/`;
const NO_CLI_OPTION = 'No CLI option names below the CLI: throw a KeytapError with a detail and word it in src/cli/explain.ts.';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'coverage/', 'bin/', '**/*.py'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['*.js', '*.mjs', 'build/*.mjs', 'bench/*.cjs'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'off',
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
    },
  },
  {
    // Words at the edges: the layers below the CLI say what went wrong in structure (KeytapError's
    // detail); only src/cli/explain.ts and src/app/explain.ts name options. The rule is to cover all
    // of src/device once the transport and the virtual key are converted too.
    files: ['src/device/oath/**/*.ts', 'src/device/connect.ts', 'src/seeds/**/*.ts', 'src/provision/**/*.ts', 'src/otp/**/*.ts', 'src/util/**/*.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        { selector: `Literal[value=${CLI_OPTION}]`, message: NO_CLI_OPTION },
        { selector: `TemplateElement[value.raw=${CLI_OPTION}]`, message: NO_CLI_OPTION },
      ],
    },
  },
  { files: ['**/*.js', '**/*.mjs', '**/*.cjs'], ...tseslint.configs.disableTypeChecked },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', process: 'readonly', module: 'writable', __dirname: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
