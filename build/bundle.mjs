// Bundles the CLI into CommonJS files. One file starts faster than a module graph, and Node's
// single-executable builder takes exactly one CommonJS script.
//
// Two bundles, and bin/keytap.cjs loads exactly one of them per process:
// - dist/keytap.cjs: everything, for the resident tray process and `keytap doctor` (and the single
//   executable);
// - dist/keytap-cli.cjs: the same program with the tray and doctor implementations left out. They
//   pull in D-Bus, conf/ajv and the tray backends, and merely compiling that code would cost every
//   `keytap code` run about 40 % of its start-up time.
import { readFile, writeFile } from 'node:fs/promises';
import { build } from 'esbuild';

const common = {
  entryPoints: ['src/cli/main.ts'],
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: 'linked',
  // Native addons, and packages that run helper binaries shipped inside them (found relative to
  // their own files), cannot be bundled; they are loaded from node_modules at run time. dbus-next
  // requires the optional 'x11' package only for X11 autolaunch bus addresses, which keytap never uses;
  // 'usocket' (native; abstract-socket bus addresses, fd passing) loads from node_modules like the
  // other addons.
  external: ['node-hid', 'smartcard', 'usb', 'uiohook-napi', 'systray2', 'node-notifier', 'clipboardy', 'x11', 'usocket'],
  logLevel: 'warning',
  // Pure ASCII output: V8 keeps a script's source text in memory for as long as the process runs,
  // at two bytes per character if a single character is not Latin-1. With this, strings and
  // identifiers are escaped; asciiComments() below takes care of the comments esbuild keeps.
  charset: 'ascii',
};

/** esbuild keeps some comments verbatim; their non-ASCII characters (§, →, ≤) become '?'. */
async function asciiComments(file) {
  const text = await readFile(file, 'utf8');
  const ascii = text.replace(/[\u0080-\u{10ffff}]/gu, '?');
  if (ascii !== text) await writeFile(file, ascii);
}

/** The modules the CLI bundle leaves out; bin/keytap.cjs never sends their commands to it. */
const RESIDENT_ONLY = /(^\.\/tray-run|\/app\/doctor)\.js$/; // import specifiers as written in tray.ts and doctor.ts

const leaveOutResident = {
  name: 'leave-out-resident',
  setup(b) {
    b.onResolve({ filter: RESIDENT_ONLY }, (args) => ({ path: args.path, namespace: 'resident-only' }));
    b.onLoad({ filter: /.*/, namespace: 'resident-only' }, () => ({
      contents: "throw new Error('keytap: this command lives in dist/keytap.cjs; run it through bin/keytap.cjs');",
      loader: 'js',
    }));
  },
};

await Promise.all([
  build({ ...common, outfile: 'dist/keytap.cjs' }),
  build({ ...common, outfile: 'dist/keytap-cli.cjs', plugins: [leaveOutResident] }),
]);
await Promise.all(['dist/keytap.cjs', 'dist/keytap-cli.cjs'].map(asciiComments));
