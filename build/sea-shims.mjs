// The single executable has no node_modules: everything is bundled, and what a package finds on
// disk next to its own files (a native addon, a helper program) is an asset instead, written out
// by the asset cache (src/util/asset-cache.ts) when the package first asks for it. This esbuild
// plugin redirects each such lookup to the cache. Every redirect names the exact code it replaces
// and the build fails when that code is not there, so an upgrade of one of these packages cannot
// quietly break the executable.
//
// Asset keys (build/dist.mjs puts the files in for each target):
//   native/HID_hidraw.node (Linux) or native/HID.node   node-hid, via pkg-prebuilds/bindings
//   native/uiohook-napi.node                             uiohook-napi, via node-gyp-build
//   native/koffi.node                                    koffi, via its @koromix/koffi-<os>-<arch> package
//   native/keyring.node                                  @napi-rs/keyring, via its @napi-rs/keyring-<triplet> package
//   systray2/traybin/<helper>                            systray2's tray helper (Windows, macOS)
//   node-notifier/vendor/…                               node-notifier's notifiers (Windows, macOS)
//   clipboardy/fallbacks/…                               clipboardy's fallback programs
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT } from './bundle-options.mjs';

const NAMESPACE = 'sea-shim';
const CACHE_MODULE = join(ROOT, 'src', 'util', 'asset-cache.ts');

/** The JavaScript that yields the running executable's asset cache. */
const CACHE = `require(${JSON.stringify(CACHE_MODULE)}).installedAssetCache()`;

/** A module's source with `from` replaced by `to`, or a build error when `from` is not in it. */
async function patched(path, replacements) {
  let text = await readFile(path, 'utf8');
  for (const [from, to] of replacements) {
    if (!text.includes(from)) throw new Error(`sea-shims: ${path} no longer contains ${JSON.stringify(from)}; update build/sea-shims.mjs`);
    text = text.split(from).join(to);
  }
  return text;
}

const SHIMS = {
  // node-hid: require("pkg-prebuilds/bindings")(__dirname, options), options.name 'HID' or 'HID_hidraw'.
  'node-hid-binding': `module.exports = (_dir, options) => require(${CACHE}.file('native/' + options.name + '.node'));`,
  // uiohook-napi: require('node-gyp-build')(packageDir).
  'uiohook-binding': `module.exports = () => require(${CACHE}.file('native/uiohook-napi.node'));`,
  // koffi's loadStatic(): require('@koromix/koffi-<os>-<arch>') is the native module itself.
  'koffi-native': `module.exports = require(${CACHE}.file('native/koffi.node'));`,
  // @napi-rs/keyring's loader: require('@napi-rs/keyring-<triplet>') is the native itself; its
  // package.json is read only for a version check keytap does not ask for.
  'keyring-native': `module.exports = require(${CACHE}.file('native/keyring.node'));`,
  'keyring-package': `module.exports = { version: ${JSON.stringify(JSON.parse(await readFile(join(ROOT, 'node_modules', '@napi-rs', 'keyring', 'package.json'), 'utf8')).version)} };`,
  // The loader first tries a .node file beside itself (a local build), last a WASI build; the executable has neither.
  'keyring-local': `throw new Error('not part of the keytap executable');`,
  // dbus-next's optional natives and helpers keytap never reaches (src/util/session-bus.ts).
  unavailable: `throw new Error('not part of the keytap executable');`,
};

export const seaShims = {
  name: 'sea-shims',
  setup(b) {
    const shim = (name) => () => ({ path: name, namespace: NAMESPACE });
    b.onResolve({ filter: /^pkg-prebuilds\/bindings$/ }, shim('node-hid-binding'));
    b.onResolve({ filter: /^node-gyp-build$/ }, (args) => {
      if (!/[\\/]uiohook-napi[\\/]/.test(args.importer)) throw new Error(`sea-shims: unexpected node-gyp-build user ${args.importer}`);
      return shim('uiohook-binding')();
    });
    // Every platform's name appears in koffi's loader; the one for process.platform/arch runs.
    b.onResolve({ filter: /^@koromix\/koffi-/ }, shim('koffi-native'));
    // Its WebAssembly fallback (tried only when the native fails) is not in the executable either.
    b.onResolve({ filter: /^@napi-rs\/keyring-wasm32-wasi$/ }, shim('keyring-local'));
    b.onResolve({ filter: /^@napi-rs\/keyring-[^/]+\/package\.json$/ }, shim('keyring-package'));
    b.onResolve({ filter: /^@napi-rs\/keyring-[^/]+$/ }, shim('keyring-native'));
    b.onResolve({ filter: /^\.\/keyring\.[^/]+\.(node|cjs)$/ }, shim('keyring-local'));
    b.onResolve({ filter: /^(usocket|abstract-socket)$/ }, shim('unavailable'));
    // node-x11 is bundled for the XTEST typist (src/desktop/typing/xtest.ts) and the X11 screen
    // capture (src/desktop/screen-capture/x11.ts, core GetImage only), but not for dbus-next
    // (X11 autolaunch bus addresses), and only the parts those use: the other extensions, the
    // keysym table, the X server and the graphics helpers are loaded lazily by node-x11 and never
    // asked for, so they stay out of the executable (about 0.7 MB of source the resident process
    // would keep in memory).
    b.onResolve({ filter: /^x11$/ }, (args) => (/[\\/]dbus-next[\\/]/.test(args.importer) ? shim('unavailable')() : undefined));
    b.onResolve({ filter: /^\.\/(ext\/[\w-]+|keysyms|xserver|gcfunction|fdpass-bun)$/ }, (args) =>
      /[\\/]node_modules[\\/]x11[\\/]lib$/.test(args.resolveDir) && !['./ext/xtest', './ext/big-requests'].includes(args.path) ? shim('unavailable')() : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: NAMESPACE }, (args) => ({ contents: SHIMS[args.path], loader: 'js', resolveDir: ROOT }));

    // systray2 looks for its helper in ./traybin (the CURRENT folder: a planted file would run)
    // and then next to itself; both become the cache.
    b.onLoad({ filter: /[\\/]node_modules[\\/]systray2[\\/]index\.js$/ }, async (args) => ({
      contents: await patched(args.path, [
        ["binPath = path.join('.', 'traybin', binName);", `binPath = path.join(${CACHE}.folder('systray2'), 'traybin', binName);`],
        ["binPath = path.join(__dirname, 'traybin', binName);", `binPath = path.join(${CACHE}.folder('systray2'), 'traybin', binName);`],
      ]),
      loader: 'js',
    }));
    // node-notifier finds its vendored programs from __dirname (node-notifier/notifiers).
    b.onLoad({ filter: /[\\/]node_modules[\\/]node-notifier[\\/]notifiers[\\/](toaster|balloon|notificationcenter)\.js$/ }, async (args) => ({
      contents: await patched(args.path, [['__dirname', `require('node:path').join(${CACHE}.folder('node-notifier'), 'notifiers')`]]),
      loader: 'js',
    }));
    // clipboardy (ESM) finds its fallback programs from import.meta.url (clipboardy/lib).
    b.onLoad({ filter: /[\\/]node_modules[\\/]clipboardy[\\/]lib[\\/](linux|windows)\.js$/ }, async (args) => ({
      contents: await patched(args.path, [['import.meta.url', `require('node:url').pathToFileURL(require('node:path').join(${CACHE}.folder('clipboardy'), 'lib', 'x.js')).href`]]),
      loader: 'js',
    }));
  },
};
