// Which bundle a command line runs from (bin/bundle-choice.cjs), shared by bin/keytap.cjs and the
// single executable's launcher.
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

const { bundleFor } = createRequire(import.meta.url)('../../bin/bundle-choice.cjs') as { bundleFor: (args: string[]) => string };

describe('the bundle a command runs from', () => {
  it.each([
    [[], 'keytap.cjs'],
    [['--demo'], 'keytap.cjs'],
    [['tray'], 'keytap.cjs'],
    [['tray', '--demo'], 'keytap.cjs'],
    [['doctor', '--json'], 'keytap.cjs'],
    [['--version'], 'keytap-cli.cjs'],
    [['-V'], 'keytap-cli.cjs'],
    [['--help'], 'keytap-cli.cjs'],
    [['code', 'github'], 'keytap-cli.cjs'],
    [['code', '--type', 'github'], 'keytap.cjs'],
    [['code', 'github', '--type'], 'keytap.cjs'],
    [['code', '--focused'], 'keytap.cjs'],
    [['--json', 'list'], 'keytap-cli.cjs'],
    [['tray', '--help'], 'keytap.cjs'],
    [['add', '--qr'], 'keytap.cjs'],
    [['add', '--qr=code.png', '--virtual', 'k.json'], 'keytap.cjs'],
    [['add', 'otpauth://totp/a?secret=AA'], 'keytap-cli.cjs'],
    [['pick'], 'keytap.cjs'],
    [['pick', '--with', 'rofi'], 'keytap.cjs'],
    [['--with', 'rofi', 'pick'], 'keytap.cjs'],
    [['--with=rofi', 'pick'], 'keytap.cjs'],
    [['--with', 'terminal', 'pick', '--help'], 'keytap.cjs'],
    [['virtual', 'start', 'k.json', '--dialect', 'feitian'], 'keytap-cli.cjs'],
    [['virtual', 'start', 'k.json', '--type-codes', 'file'], 'keytap-cli.cjs'],
    [['virtual', 'start', 'k.json', '--type-codes', 'display'], 'keytap.cjs'],
    [['virtual', 'start', 'k.json', '--type-codes=display', '--foreground'], 'keytap.cjs'],
  ])('keytap %j → %s', (args, bundle) => {
    expect(bundleFor(args)).toBe(bundle);
  });
});
