// The CLI bundle (dist/keytap-cli.cjs) leaves out every resident-only module, matched by where an
// import resolves to, not by how it is spelled. Built in memory with the options build/bundle.mjs uses.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { BuildOptions } from 'esbuild';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { RESIDENT_NAMESPACE, RESIDENT_ONLY, ROOT, cliBundle, common, fullBundle, isResidentOnly, leaveOutResident } from '../../build/bundle-options.mjs';

async function inputs(options: BuildOptions): Promise<string[]> {
  const result = await build({ ...options, write: false, metafile: true, logLevel: 'silent' });
  return Object.keys(result.metafile.inputs);
}

/** An entry in src/cli that imports the resident process and doctor by other spellings. */
function oddlySpelled(plugins: BuildOptions['plugins']): BuildOptions {
  const { entryPoints: _entryPoints, ...rest } = common;
  return {
    ...rest,
    outfile: 'odd.cjs',
    plugins,
    stdin: {
      resolveDir: join(ROOT, 'src', 'cli'),
      sourcefile: 'odd.ts',
      loader: 'ts',
      contents: [
        "export const a = () => import('./commands/../commands/tray-run.js');",
        `export const b = () => import(${JSON.stringify(join(ROOT, 'src', 'app', 'doctor.ts'))});`,
        "export const c = () => import('../tray/index.js');",
      ].join('\n'),
    },
  };
}

const residentIn = (files: string[]): string[] => files.filter((file) => !file.startsWith(`${RESIDENT_NAMESPACE}:`) && isResidentOnly(file));

describe('the resident-only list', () => {
  it('names modules and folders that exist', () => {
    expect(RESIDENT_ONLY).toEqual(expect.arrayContaining(['src/cli/commands/tray-run.ts', 'src/app/doctor.ts', 'src/tray/', 'src/notify/']));
    for (const entry of RESIDENT_ONLY) {
      const path = join(ROOT, entry);
      expect(existsSync(path), `${entry} is in RESIDENT_ONLY but does not exist`).toBe(true);
      expect(statSync(path).isDirectory(), `${entry}: folders end in '/'`).toBe(entry.endsWith('/'));
    }
  });

  it('matches paths, folders by prefix, and nothing beside them', () => {
    expect(isResidentOnly(join(ROOT, 'src/cli/commands/tray-run.ts'))).toBe(true);
    expect(isResidentOnly('src/tray/sni/backend.ts')).toBe(true);
    // Unlocking a key is the CLI's too: the secret prompt and the keyring are in src/desktop but not resident-only.
    expect(isResidentOnly('src/desktop/clipboard/index.ts')).toBe(true);
    expect(isResidentOnly('src/desktop/secret-prompt/pinentry.ts')).toBe(false);
    expect(isResidentOnly('src/desktop/keyring/index.ts')).toBe(false);
    expect(isResidentOnly('src/cli/commands/tray.ts')).toBe(false);
    expect(isResidentOnly('src/trayish/x.ts')).toBe(false);
    expect(isResidentOnly('src/app/ipc.ts')).toBe(false);
  });
});

describe('the CLI bundle', () => {
  it('contains none of the resident-only modules, and stand-ins for the two the CLI loads on demand', async () => {
    const files = await inputs(cliBundle);
    expect(residentIn(files)).toEqual([]);
    expect(files).toContain(`${RESIDENT_NAMESPACE}:src/cli/commands/tray-run.ts`);
    expect(files).toContain(`${RESIDENT_NAMESPACE}:src/app/doctor.ts`);
    expect(files).toContain('src/cli/commands/code.ts');
    // `add --qr` runs from the full bundle (bin/bundle-choice.cjs); its image code is left out here.
    for (const module of ['src/qr/accounts.ts', 'src/desktop/screen-capture/index.ts']) expect(files).toContain(`${RESIDENT_NAMESPACE}:${module}`);
    // What those two import (the image decoders, jsQR) is not in it at all.
    for (const module of ['src/qr/image.ts', 'src/qr/find.ts']) expect(files.filter((file) => file.endsWith(module))).toEqual([]);
  });

  it('while the full bundle has them (the check above can fail)', async () => {
    const files = await inputs(fullBundle);
    expect(residentIn(files)).toEqual(
      expect.arrayContaining(['src/cli/commands/tray-run.ts', 'src/app/doctor.ts', 'src/tray/index.ts', 'src/notify/index.ts', 'src/qr/find.ts', 'src/otp/migration.ts', 'src/desktop/screen-capture/x11.ts']),
    );
  });

  it('leaves them out however the import is spelled', async () => {
    expect(residentIn(await inputs(oddlySpelled([])))).toEqual(expect.arrayContaining(['src/cli/commands/tray-run.ts', 'src/app/doctor.ts', 'src/tray/index.ts']));
    const files = await inputs(oddlySpelled([leaveOutResident]));
    expect(residentIn(files)).toEqual([]);
    expect(files).toEqual(expect.arrayContaining([`${RESIDENT_NAMESPACE}:src/cli/commands/tray-run.ts`, `${RESIDENT_NAMESPACE}:src/app/doctor.ts`, `${RESIDENT_NAMESPACE}:src/tray/index.ts`]));
  });
});
