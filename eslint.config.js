// Lint: typescript-eslint's type-aware recommended rules. Floating promises are errors because
// an unhandled rejection in the resident process is a crash.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** An "--option" in a string: at the start, after a space, a quote, a backtick or "(" (esquery regex). */
const CLI_OPTION = String.raw`/(^|\s|["'\u0060(])--[a-z]/`;
const NO_CLI_OPTION = 'No CLI option names below the CLI: throw a KeytapError with a detail and word it in src/cli/explain.ts.';

// The layers (docs/architecture.md): each folder lists the folders it must not import. A
// relative import names the folder as a path segment, so one regular expression per folder
// catches every spelling ('../app/x.js', '../../app/y.js').
const LAYERS = ['otp', 'qr', 'util', 'device', 'emulator', 'seeds', 'provision', 'entra-id', 'desktop', 'tray', 'notify', 'app', 'cli', 'sea'];
const MAY_IMPORT = {
  util: [],
  otp: ['util'],
  // QR codes in images: pixels in, account URIs out (no I/O); the screen capture is in desktop.
  qr: ['otp', 'util'],
  device: ['otp', 'util'],
  emulator: ['device', 'otp', 'util'],
  seeds: ['otp', 'util'],
  provision: ['device', 'seeds', 'otp', 'util'],
  // Microsoft Graph for Entra ID: protocol code over fetch, handed plain tokens by the CLI.
  'entra-id': ['seeds', 'otp', 'util'],
  desktop: ['util'],
  tray: ['util'],
  notify: ['util'],
  app: ['device', 'desktop', 'tray', 'notify', 'otp', 'qr', 'util'],
  cli: LAYERS.filter((layer) => layer !== 'sea'),
  // The single executable's launcher: it only prepares the asset cache and loads a bundle.
  sea: ['util'],
};
const layerRules = Object.entries(MAY_IMPORT).map(([layer, allowed]) => {
  const forbidden = LAYERS.filter((other) => other !== layer && !allowed.includes(other));
  return {
    files: [`src/${layer}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: forbidden.length === 0 ? [] : [
            {
              regex: `^\\.{1,2}/(?:\\.\\./)*(?:${forbidden.join('|')})(?:/|\\.js$)`,
              message: `src/${layer} must not import ${forbidden.join(', ')} (docs/architecture.md).`,
            },
          ],
        },
      ],
    },
  };
});

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
    // detail); only src/cli/explain.ts and src/app/explain.ts name keytap's options. Another
    // program's option in a hint (systemctl --now) takes an eslint-disable comment saying so.
    files: ['src/device/**/*.ts', 'src/emulator/**/*.ts', 'src/seeds/**/*.ts', 'src/provision/**/*.ts', 'src/otp/**/*.ts', 'src/qr/**/*.ts', 'src/util/**/*.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        { selector: `Literal[value=${CLI_OPTION}]`, message: NO_CLI_OPTION },
        { selector: `TemplateElement[value.raw=${CLI_OPTION}]`, message: NO_CLI_OPTION },
      ],
    },
  },
  ...layerRules,
  { files: ['**/*.js', '**/*.mjs', '**/*.cjs'], ...tseslint.configs.disableTypeChecked },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', process: 'readonly', module: 'writable', __dirname: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
