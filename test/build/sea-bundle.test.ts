// The single executable's bundles (build/dist.mjs with build/sea-shims.mjs), built in memory: they
// must need nothing from node_modules at run time (a SEA has none), and every native addon or
// helper program lookup must go to the asset cache.
import { readFileSync, rmSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { common } from '../../build/bundle-options.mjs';
import { buildBundles } from '../../build/dist.mjs';
import { seaShims } from '../../build/sea-shims.mjs';
import { tempDir } from '../support/cli.js';

describe('the single executable\'s program bundle', () => {
  it('bundles every package, loads natives and helpers from the asset cache, and requires only Node built-ins', async () => {
    const result = await build({ ...common, external: [], sourcemap: false, plugins: [seaShims], write: false, metafile: true, logLevel: 'silent', outfile: 'sea.cjs' });
    const text = result.outputFiles[0]!.text;
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs.filter((file) => file.endsWith('.node'))).toEqual([]);
    // The packages whose files on disk are replaced are in, with their lookups redirected.
    for (const pkg of ['node-hid/nodehid.js', 'systray2/index.js', 'node-notifier/notifiers/toaster.js', 'clipboardy/lib/linux.js', 'uiohook-napi/dist/index.js']) {
      expect(inputs.some((file) => file.endsWith(`node_modules/${pkg}`)), pkg).toBe(true);
    }
    expect(text).not.toContain("path.join('.', 'traybin'");
    expect(text).not.toMatch(/pkg-prebuilds|node-gyp-build\(/u);
    for (const key of ['folder("systray2")', 'folder("node-notifier")', 'folder("clipboardy")', 'file("native/" + options.name + ".node")', 'file("native/uiohook-napi.node")']) {
      expect(text, key).toContain(key);
    }
    // What is left to require at run time: Node's built-ins only. (A require in a string, such as
    // the code ajv generates for standalone validators, is not a call: the quote before it says so.)
    const required = [...text.matchAll(/(?<!['"`])\brequire\("([^"]+)"\)/gu)].map((match) => match[1]!);
    const builtins = new Set([...builtinModules, ...builtinModules.map((name) => `node:${name}`), 'node:sea']);
    expect(required.filter((name) => !builtins.has(name))).toEqual([]);
  }, 60_000);

  // V8 keeps a script's source for the life of the process, as a two-byte string when a single
  // character is outside Latin-1: for the resident bundle that would be 4.8 MB instead of 2.4 MB.
  it('is pure ASCII, as build/dist.mjs writes it (launcher and both program bundles)', async () => {
    const dir = tempDir('keytap-sea-bundles-');
    try {
      await buildBundles(dir);
      for (const file of ['launcher.cjs', 'keytap.cjs', 'keytap-cli.cjs']) {
        const text = readFileSync(join(dir, file), 'utf8');
        expect(text.length, file).toBeGreaterThan(1000);
        expect(text.match(/[^\p{ASCII}]/gu) ?? [], file).toEqual([]);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
