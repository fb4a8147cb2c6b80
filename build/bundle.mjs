// Bundles the CLI into one CommonJS file (dist/keytap.cjs). One file starts faster than a module
// graph, and Node's single-executable builder (build/sea) takes exactly one CommonJS script.
import { build } from 'esbuild';

await build({
  entryPoints: ['src/cli/main.ts'],
  outfile: 'dist/keytap.cjs',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: 'linked',
  // Native addons, and packages that run helper binaries shipped inside them (found relative to
  // their own files), cannot be bundled; they are loaded from node_modules at run time.
  // dbus-next requires the optional 'x11' package only for X11 autolaunch bus addresses, which
  // keytap never uses.
  external: ['node-hid', 'smartcard', 'usb', 'uiohook-napi', 'systray2', 'node-notifier', 'clipboardy', 'x11'],
  logLevel: 'warning',
});
