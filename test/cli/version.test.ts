// `keytap --version` prints package.json's version: the bundle has it from the build, the source
// from package.json.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createProgram } from '../../src/cli/program.js';
import { runKeytap } from '../support/cli.js';

const { version } = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };

describe('the version', () => {
  it('keytap --version prints the package version', async () => {
    const result = await runKeytap(['--version']);
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe(version);
  });

  it('run from source, the program has the same version', () => {
    expect(createProgram({ out: () => undefined, err: () => undefined }).version()).toBe(version);
  });
});
