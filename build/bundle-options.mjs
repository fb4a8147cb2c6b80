// What build/bundle.mjs builds, apart from the build itself, so the bundle tests build the same
// thing in memory (test/build/bundle.test.ts).
//
// Two bundles, and bin/keytap.cjs loads exactly one of them per process:
// - dist/keytap.cjs: everything, for the resident tray process and `keytap doctor` (and the single
//   executable);
// - dist/keytap-cli.cjs: the same program with the tray and doctor implementations left out. They
//   pull in D-Bus, conf/ajv and the tray backends, and merely compiling that code would cost every
//   `keytap code` run about 40 % of its start-up time.
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));

/**
 * The modules only the resident process and `keytap doctor` use, relative to the repository root;
 * a path ending in '/' is a folder and everything under it. THE one list: the CLI bundle leaves out
 * whatever resolves to one of them, however the import is spelled, and the bundle test checks that
 * every entry exists and that none of them is in the CLI bundle. A module that moves changes here.
 */
export const RESIDENT_ONLY = [
  'src/cli/commands/tray-run.ts',
  'src/cli/commands/pick-run.ts',
  'src/cli/typist.ts',
  'src/cli/resident-v8.ts',
  'src/app/resident.ts',
  'src/app/doctor.ts',
  'src/app/controller.ts',
  'src/app/key-operations.ts',
  'src/app/code-requests.ts',
  'src/app/toasts.ts',
  'src/app/tray-render.ts',
  'src/app/ipc-dispatch.ts',
  'src/app/recent-store.ts',
  'src/app/state.ts',
  'src/app/menu-model.ts',
  'src/app/config.ts',
  'src/app/instance.ts',
  'src/desktop/',
  'src/tray/',
  'src/notify/',
  // Only `add --qr` uses these (image decoding, Google Authenticator exports); bin/bundle-choice.cjs
  // sends it to the full bundle.
  'src/qr/',
  'src/otp/migration.ts',
];

/** Folders under a RESIDENT_ONLY folder that the CLI uses all the same: unlocking a key (`keytap code`, `list`). */
export const CLI_ALSO = ['src/desktop/secret-prompt/', 'src/desktop/keyring/'];

const under = (fromRoot, entry) => (entry.endsWith('/') ? fromRoot.startsWith(entry) : fromRoot === entry);

/** Whether an absolute path (or one relative to the repository root) is under RESIDENT_ONLY (and not CLI_ALSO). */
export function isResidentOnly(path) {
  const fromRoot = relative(ROOT, resolve(ROOT, path)).split(sep).join('/');
  return RESIDENT_ONLY.some((entry) => under(fromRoot, entry)) && !CLI_ALSO.some((entry) => under(fromRoot, entry));
}

/** The namespace of the stand-ins the CLI bundle has instead of the resident-only modules. */
export const RESIDENT_NAMESPACE = 'resident-only';

/**
 * Replaces every import that RESOLVES to a resident-only module (esbuild's own resolution, so
 * `./tray-run.js`, `../commands/tray-run.js` and an absolute path are the same module) by a module
 * that throws when loaded; bin/keytap.cjs never sends the commands that load them to this bundle.
 */
export const leaveOutResident = {
  name: 'leave-out-resident',
  setup(b) {
    b.onResolve({ filter: /^[./]/ }, async (args) => {
      if (args.pluginData?.leaveOutResident) return undefined; // our own b.resolve() below
      const resolved = await b.resolve(args.path, {
        kind: args.kind,
        importer: args.importer,
        resolveDir: args.resolveDir,
        pluginData: { leaveOutResident: true },
      });
      if (resolved.errors.length > 0 || resolved.external || !isResidentOnly(resolved.path)) return undefined;
      return { path: relative(ROOT, resolved.path).split(sep).join('/'), namespace: RESIDENT_NAMESPACE };
    });
    b.onLoad({ filter: /.*/, namespace: RESIDENT_NAMESPACE }, () => ({
      contents: "throw new Error('keytap: this command lives in dist/keytap.cjs; run it through bin/keytap.cjs');",
      loader: 'js',
    }));
  },
};

export const common = {
  absWorkingDir: ROOT,
  entryPoints: ['src/cli/main.ts'],
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: 'linked',
  // Native addons, and packages that run helper binaries shipped inside them (found relative to
  // their own files), cannot be bundled; they are loaded from node_modules at run time. dbus-next
  // requires the optional 'x11' package only for X11 autolaunch bus addresses, which keytap never uses,
  // and 'usocket' (native) only for addresses that util/session-bus.ts never hands it. koffi finds its
  // prebuilt native (@koromix/koffi-<platform>-<arch>) relative to its own files.
  // @napi-rs/keyring finds its native (@napi-rs/keyring-<triplet>) the same way.
  external: ['node-hid', 'koffi', '@napi-rs/keyring', 'usb', 'uiohook-napi', 'systray2', 'node-notifier', 'clipboardy', 'x11', 'usocket'],
  // The version `keytap --version` and About show (src/cli/version.ts); package.json stays out.
  define: { KEYTAP_VERSION: JSON.stringify(version) },
  logLevel: 'warning',
  // Pure ASCII output: V8 keeps a script's source text in memory for as long as the process runs,
  // at two bytes per character if a single character is not Latin-1. With this, strings and
  // identifiers are escaped; asciiComments() below takes care of the comments esbuild keeps.
  charset: 'ascii',
};

export const fullBundle = { ...common, outfile: 'dist/keytap.cjs' };
export const cliBundle = { ...common, outfile: 'dist/keytap-cli.cjs', plugins: [leaveOutResident] };

/**
 * esbuild keeps some comments verbatim; their non-ASCII characters (§, →, ≤) become '?'. Run on
 * every bundle written (build/bundle.mjs, build/dist.mjs): one such character makes V8 hold the
 * whole source as a two-byte string, 2.4 MB more in the resident process of the executable.
 */
export async function asciiComments(file) {
  const text = await readFile(file, 'utf8');
  const ascii = text.replace(/[\u0080-\u{10ffff}]/gu, '?');
  if (ascii !== text) await writeFile(file, ascii);
}
