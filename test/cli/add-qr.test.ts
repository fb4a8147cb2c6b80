/**
 * `keytap add --qr [IMAGE]` as a user runs it, on virtual keys of both dialects: QR codes made by
 * the qrcode package (PNG, a JPEG from ImageMagick, a screen with two codes), Google
 * Authenticator exports built by Google's protobuf runtime, and an Xvfb screen showing a code
 * (ImageMagick's display). Every added account's code is checked against oathtool.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Dialect } from '../../src/device/oath/dialect.js';
import { Desktop, missingTool, skipMessage } from '../platform/desktop.js';
import { keytapCommand, oathtool, runKeytap, tempDir } from '../support/cli.js';
import { migrationUri } from '../support/migration-payload.js';
import { qrPng, screenPng } from '../support/qr-images.js';
import { HAVE_SCRIPT, startOnTerminal } from '../support/terminal.js';

// RFC 6238's SHA-256 secret and RFC 4226's (docs/seed-formats.md §5).
const SHA256_HEX = Buffer.from('12345678901234567890123456789012').toString('hex');
const SHA256_B32 = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA';
const SHA1_HEX = Buffer.from('12345678901234567890').toString('hex');
const URI_BANK = `otpauth://totp/Bank:alice?secret=${SHA256_B32}&issuer=Bank&algorithm=SHA256&digits=8&period=60`;
const URI_FORGE = `otpauth://totp/Forge:bob?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Forge`;
const EXPORT = {
  otp_parameters: [
    { secret_hex: SHA1_HEX, name: 'Mail:carol@example.com', issuer: 'Mail', algorithm: 1, digits: 1, type: 2 },
    { secret_hex: SHA1_HEX, name: 'dave', issuer: 'Legacy', algorithm: 4, digits: 1, type: 2 },
    { secret_hex: SHA1_HEX, name: 'erin', issuer: 'VPN', algorithm: 1, digits: 2, type: 1, counter: 5 },
  ],
};

function keyArgs(dialect: Dialect): string[] {
  return ['--virtual', join(tempDir(), 'key.json'), '--dialect', dialect];
}

async function ok(args: string[], env?: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string }> {
  const result = await runKeytap(args, { env });
  if (result.code !== 0) throw new Error(`keytap ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  return result;
}

async function file(name: string, bytes: Buffer | Promise<Buffer>): Promise<string> {
  const path = join(tempDir('keytap-qr-'), name);
  writeFileSync(path, await bytes);
  return path;
}

/** The account's current code from the key, and oathtool's for the same time step. */
async function expectTotp(key: string[], query: string, hexSecret: string, extra: { algorithm?: 'SHA256'; digits?: number; period?: number } = {}): Promise<void> {
  const json = JSON.parse((await ok(['code', ...key, query, '--json'])).stdout) as { code: string; validFrom: string };
  const time = Date.parse(json.validFrom) / 1000;
  expect(json.code).toBe(await oathtool({ hexSecret, type: 'TOTP', time, ...extra }));
}

async function ids(key: string[]): Promise<string[]> {
  const listed = JSON.parse((await ok(['list', ...key, '--json'])).stdout) as { id: string }[];
  return listed.map((c) => c.id).sort();
}

describe.each<Dialect>(['yubikey', 'nitrokey3'])('keytap add --qr IMAGE on a virtual %s', (dialect) => {
  it('adds the account of a PNG; its code is oathtool\'s', async () => {
    const key = keyArgs(dialect);
    const png = await file('bank.png', qrPng(URI_BANK));
    const { stderr } = await ok(['add', ...key, '--qr', png, '--yes']);
    expect(stderr).toContain('Added 60/Bank:alice to');
    expect(stderr).not.toContain(SHA256_B32);
    await expectTotp(key, 'Bank', SHA256_HEX, { algorithm: 'SHA256', digits: 8, period: 60 });
  });

  it('reads a JPEG, and takes --touch and --replace like add', async () => {
    const key = keyArgs(dialect);
    const png = await file('forge.png', qrPng(URI_FORGE, 6));
    const jpeg = png.replace(/\.png$/, '.jpg');
    execFileSync('convert', [png, '-quality', '75', jpeg]);
    await ok(['add', ...key, '--qr', jpeg, '--yes']);
    const again = await runKeytap(['add', ...key, '--qr', jpeg, '--yes']);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/already has an account "Forge:bob"/);
    expect(again.stderr).toMatch(/--replace/);
    await ok(['add', ...key, '--qr', jpeg, '--yes', '--replace', '--touch']);
    const listed = JSON.parse((await ok(['list', ...key, '--json'])).stdout) as { id: string; touch: boolean }[];
    expect(listed).toMatchObject([{ id: 'Forge:bob', touch: true }]);
  });

  it('a Google Authenticator export: without a terminal it lists the accounts and adds none; --pick and --all choose', async () => {
    const key = keyArgs(dialect);
    const png = await file('export.png', qrPng(migrationUri(EXPORT), 3));
    const refused = await runKeytap(['add', ...key, '--qr', png]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('Skipped: Legacy: dave from the Google Authenticator export: it uses MD5, which OATH keys do not support.');
    expect(refused.stderr).toContain('2 accounts found: 1) Mail: carol@example.com (TOTP, SHA1, 6 digits, every 30 s), 2) VPN: erin (HOTP, SHA1, 8 digits, counter 5).');
    expect(refused.stderr).toMatch(/--pick N .*--all/);
    expect(await ids(key)).toEqual([]);

    await ok(['add', ...key, '--qr', png, '--pick', '2', '--yes']);
    expect(await ids(key)).toEqual(['VPN:erin']);
    // HOTP with the export's counter: the key's next code is oathtool's at counter 5.
    const hotp = JSON.parse((await ok(['code', ...key, 'erin', '--json'])).stdout) as { code: string };
    expect(hotp.code).toBe(await oathtool({ hexSecret: SHA1_HEX, type: 'HOTP', counter: 5, digits: 8 }));

    await ok(['add', ...key, '--qr', png, '--pick', '1', '--yes']);
    await expectTotp(key, 'carol', SHA1_HEX);
    const all = await runKeytap(['add', ...key, '--qr', png, '--all', '--yes', '--replace']);
    expect(all.code).toBe(0);
    expect(all.stderr.match(/^Added /gmu)).toHaveLength(2);
  });

  it('an export split over three codes: the ones missing from the image are named; with all three, no warning', async () => {
    const key = keyArgs(dialect);
    const part = (index: number): string =>
      migrationUri({ batch_size: 3, batch_index: index, batch_id: 41, otp_parameters: [{ secret_hex: SHA1_HEX, name: `user${index + 1}`, issuer: 'Split', algorithm: 1, digits: 1, type: 2 }] });
    const first = await file('first.png', qrPng(part(0), 3));
    const one = await ok(['add', ...key, '--qr', first, '--yes']);
    expect(one.stderr).toContain('Google Authenticator export: codes 2 and 3 of 3 were not in the image; read them too, for the accounts they hold.');
    const two = await file('two.png', screenPng(1000, 450, [{ text: part(0), x: 40, y: 60, scale: 3 }, { text: part(2), x: 560, y: 60, scale: 3 }]));
    const refused = await runKeytap(['add', ...key, '--qr', two, '--yes']);
    expect(refused.stderr).toContain('Google Authenticator export: code 2 of 3 was not in the image; read it too, for the accounts it holds.');
    const all = await file('all.png', screenPng(1500, 450, [0, 1, 2].map((index) => ({ text: part(index), x: 40 + index * 480, y: 60, scale: 3 }))));
    const added = await ok(['add', ...key, '--qr', all, '--all', '--yes', '--replace']);
    expect(added.stderr).not.toMatch(/Google Authenticator export:|of 3/);
    expect(await ids(key)).toEqual(['Split:user1', 'Split:user2', 'Split:user3']);
  });

  it('an image with two codes side by side: both are offered', async () => {
    const key = keyArgs(dialect);
    const png = await file('two.png', screenPng(1000, 500, [{ text: URI_FORGE, x: 560, y: 80 }, { text: URI_BANK, x: 60, y: 90 }]));
    const refused = await runKeytap(['add', ...key, '--qr', png, '--yes']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/2 accounts found: 1\) Bank: alice .*, 2\) Forge: bob /);
    await ok(['add', ...key, '--qr', png, '--all', '--yes']);
    expect(await ids(key)).toEqual(['60/Bank:alice', 'Forge:bob']);
  });
});

describe('keytap add --qr: what is refused', () => {
  it('a code that is no account, no code, a missing file, a file that is no image, --qr with a URI', async () => {
    const key = keyArgs('yubikey');
    const url = await file('url.png', qrPng('https://accounts.example.com/setup?token=HIDDENTOKEN'));
    const cases: [string[], number, RegExp][] = [
      [['--qr', url, '--yes'], 2, /The QR code holds no account: a web address on accounts\.example\.com, not an otpauth:\/\/ URI\./],
      [['--qr', await file('blank.png', screenPng(300, 200, [])), '--yes'], 2, /No QR code found in the image\.\n {2}Use an image where the code is sharp/],
      [['--qr', join(tempDir(), 'missing.png')], 6, /Cannot read the image .*missing\.png: no such file\./],
      [['--qr', await file('text.png', Buffer.from('otpauth://totp/a?secret=AAAA'))], 2, /not a PNG or JPEG image/],
      [['--qr', url, URI_FORGE], 2, /either an otpauth:\/\/ URI or --qr/],
      [['--qr', url, '--issuer', 'X'], 2, /leave out --issuer/],
      [['--qr', url, '--pick', '0'], 2, /--pick/],
      [['--all', URI_FORGE], 2, /--all only applies with --qr/],
    ];
    for (const [args, code, message] of cases) {
      const result = await runKeytap(['add', ...key, ...args]);
      expect({ args, code: result.code }).toEqual({ args, code });
      expect(result.stderr).toMatch(message);
      expect(result.stderr).not.toMatch(/HIDDENTOKEN|AAAA/);
    }
    expect(await ids(key)).toEqual([]);
  });
});

describe.skipIf(!HAVE_SCRIPT)('keytap add --qr on a terminal', () => {
  it('asks which account, shows it, asks before writing', async () => {
    const key = keyArgs('nitrokey3');
    const png = await file('export.png', qrPng(migrationUri(EXPORT), 3));
    const self = keytapCommand(['add', ...key, '--qr', png]);
    let answered = 0;
    const { output, code } = await startOnTerminal(self.command, self.args, {
      onOutput: (text, terminal) => {
        if (answered === 0 && text.includes('Which account to add (1-3)')) {
          answered = 1;
          terminal.type('1\r');
        } else if (answered === 1 && text.includes('Add this account to the key? [y/N]')) {
          answered = 2;
          terminal.type('y\r');
        }
      },
    }).ended;
    // eslint-disable-next-line no-control-regex -- the terminal's escape sequences are taken out
    const plain = output.replace(/\x1b\[[0-9;]*[A-Za-z]/gu, '');
    expect(plain).toContain('1) Mail: carol@example.com (TOTP, SHA1, 6 digits, every 30 s), from the Google Authenticator export');
    expect(plain).toContain('3) all 2');
    expect(plain).toMatch(/ {2}Mail: carol@example\.com \(TOTP, SHA1, 6 digits, every 30 s\)\r?\nAdd this account to the key\? \[y\/N\]/);
    expect(plain).toContain('Added Mail:carol@example.com to');
    expect(code).toBe(0);
    await expectTotp(key, 'carol', SHA1_HEX);
  });

  it('No at the confirmation adds nothing', async () => {
    const key = keyArgs('yubikey');
    const png = await file('bank.png', qrPng(URI_BANK));
    const self = keytapCommand(['add', ...key, '--qr', png]);
    let answered = false;
    const { output, code } = await startOnTerminal(self.command, self.args, {
      onOutput: (text, terminal) => {
        if (!answered && text.includes('[y/N]')) {
          answered = true;
          terminal.type('\r');
        }
      },
    }).ended;
    expect(output).toContain('Bank: alice (TOTP, SHA256, 8 digits, every 60 s)');
    expect(output).toContain('Nothing was added.');
    expect(code).not.toBe(0);
    expect((await runKeytap(['list', ...key])).stdout).not.toContain('Bank');
  });
});

const missingX = missingTool('Xvfb', 'display');

describe.skipIf(missingX !== undefined)(`keytap add --qr from the X11 screen ${skipMessage(missingX, missingX === 'display' ? 'imagemagick' : 'xvfb')}`, () => {
  it.each<Dialect>(['yubikey', 'nitrokey3'])('an Xvfb screen showing a code: the account goes on a virtual %s, its code is oathtool\'s', async (dialect) => {
    const desktop = new Desktop();
    let viewer: ChildProcess | undefined;
    try {
      await desktop.startX('1024x768x24');
      const png = await file('bank.png', qrPng(URI_BANK, 4));
      viewer = spawn('display', ['-geometry', '+300+200', png], { env: desktop.processEnv(), stdio: 'ignore' });
      const key = keyArgs(dialect);
      const env = { DISPLAY: desktop.env.DISPLAY, WAYLAND_DISPLAY: '', XDG_SESSION_TYPE: 'x11' };
      let result = await runKeytap(['add', ...key, '--qr', '--yes'], { env });
      // display may take a moment to map its window: until then the screen is empty.
      const deadline = Date.now() + 10_000;
      while (result.code !== 0 && /No QR code found on the screen/.test(result.stderr) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        result = await runKeytap(['add', ...key, '--qr', '--yes'], { env });
      }
      expect(result.stderr).toContain('Looking for QR codes on the screen (X11)');
      expect(result.code).toBe(0);
      await expectTotp(key, 'Bank', SHA256_HEX, { algorithm: 'SHA256', digits: 8, period: 60 });
    } finally {
      viewer?.kill('SIGTERM');
      await desktop.stop();
    }
  });
});
