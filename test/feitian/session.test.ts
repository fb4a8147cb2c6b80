// The Feitian HOTP session (the real client: CTAPHID MSG framing, SELECT/CHECK/ERASE/PROGRAM) over
// the virtual key's third dialect, at the 64-byte report boundary; the code the key "types" on a
// touch checked with oathtool.
import { readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FeitianSession } from '../../src/device/feitian/session.js';
import { openAnyKey, openCtapHidTransport, openOathSession } from '../../src/device/open.js';
import { CtapHidDeviceError } from '../../src/device/transport/ctaphid.js';
import { traceApduTransport } from '../../src/device/transport/trace.js';
import { typedCodesFile } from '../../src/emulator/feitian-applet.js';
import { virtualFileKey } from '../../src/emulator/virtual-file.js';
import { VirtualKey } from '../../src/emulator/virtual-key.js';
import type { ApduTransport } from '../../src/device/transport/types.js';
import { KeytapError } from '../../src/errors.js';
import { oathtool, tempDir } from '../support/cli.js';
import { rejection } from '../support/rejection.js';

const dir = tempDir('keytap-feitian-');
afterAll(() => rm(dir, { recursive: true, force: true }));

const SEED = Buffer.from('3132333435363738393031323334353637383930', 'hex');

async function open(file: string, touch: 'auto' | 'never' = 'auto') {
  const key = await VirtualKey.open({ file, dialect: 'feitian', touch: touch === 'auto' ? { mode: 'auto', delayMs: 0 } : { mode: 'never' }, touchTimeoutMs: 200 });
  const transport = await openCtapHidTransport(key.openLink(), 'virtual Feitian key', undefined, 'msg');
  const session = await FeitianSession.open(transport);
  return { key, session, close: async () => { await transport.close(); await key.close(); } };
}

/** A key without the Feitian applet: it answers every APDU with one status word and records what it was sent. */
function keyWithoutApplet(sw: number) {
  const sent: Uint8Array[] = [];
  const transport: ApduTransport = {
    description: 'key without the Feitian applet',
    transmit: (apdu) => {
      sent.push(apdu);
      return Promise.resolve({ data: new Uint8Array(0), sw });
    },
    close: () => Promise.resolve(),
  };
  return { transport, sent };
}

describe('Feitian HOTP key: a key whose SELECT fails', () => {
  it.each([0x6a82, 0x6d00])('SELECT answered %#x is refused with a PROTOCOL error, and nothing more is sent', async (sw) => {
    const { transport, sent } = keyWithoutApplet(sw);
    const error = await rejection(FeitianSession.open(transport));
    expect(error).toBeInstanceOf(KeytapError);
    expect(error.code).toBe('PROTOCOL');
    expect(error.detail).toEqual({ kind: 'status', sw, doing: 'selecting the HOTP application' });
    expect(sent.map((apdu) => apdu[1])).toEqual([0xa4]);
  });
});

describe('Feitian HOTP key: client ↔ virtual key', () => {
  it('a new key is erased; PROGRAM stores the token, CHECK then tells its serial, and it survives a re-open', async () => {
    const file = join(dir, 'program.json');
    const first = await open(file);
    try {
      expect(first.session.programmed).toBe(false);
      expect(first.session.serial).toBeUndefined();
      let touched = 0;
      await first.session.program({ digits: 6, seed: SEED, serial: 'KT000001' }, { onTouchNeeded: () => touched++ });
      expect(touched).toBe(1);
      expect(first.session.serial).toBe('KT000001');
    } finally {
      await first.close();
    }
    const again = await open(file);
    try {
      expect(await again.session.check()).toEqual({ programmed: true, serial: 'KT000001' });
    } finally {
      await again.close();
    }
    const json = JSON.parse(await readFile(file, 'utf8'));
    expect(json.dialect).toBe('feitian');
    expect(json.hotp).toMatchObject({ digits: 6, serial: 'KT000001', counter: 0 });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it('a touch types HOTP(seed, 0), (seed, 1), … to the file beside the key, as oathtool computes them', async () => {
    const file = join(dir, 'typing.json');
    const { key, session, close } = await open(file);
    try {
      await session.program({ digits: 8, seed: SEED, serial: '00000042' });
      await key.touch();
      await key.touch();
      await key.touch();
    } finally {
      await close();
    }
    const typed = (await readFile(typedCodesFile(file), 'utf8')).split('\n').filter(Boolean);
    const expected = await Promise.all([0, 1, 2].map((counter) => oathtool({ hexSecret: SEED.toString('hex'), type: 'HOTP', digits: 8, counter })));
    expect(typed).toEqual(expected);
    expect((await stat(typedCodesFile(file))).mode & 0o777).toBe(0o600);
  });

  it('an erased key types nothing on a touch', async () => {
    const file = join(dir, 'blank.json');
    const { key, close } = await open(file);
    try {
      await key.touch();
    } finally {
      await close();
    }
    await expect(stat(typedCodesFile(file))).rejects.toThrow(/ENOENT/u);
  });

  it('refuses to program a programmed key before sending anything, with its serial in the detail', async () => {
    const file = join(dir, 'twice.json');
    const { session, close } = await open(file);
    try {
      await session.program({ digits: 6, seed: SEED, serial: 'FIRST001' });
      const error = await rejection(session.program({ digits: 6, seed: SEED, serial: 'SECOND01' }));
      expect(error).toBeInstanceOf(KeytapError);
      expect(error).toMatchObject({ code: 'EXISTS', detail: { kind: 'hotp-key-programmed', serial: 'FIRST001' } });
      expect(session.serial).toBe('FIRST001');
    } finally {
      await close();
    }
  });

  it('ERASE after a touch leaves the key erased; without a touch it is refused (69xx) and the token stays', async () => {
    const file = join(dir, 'erase.json');
    const touched = await open(file);
    try {
      await touched.session.program({ digits: 6, seed: SEED, serial: 'ERASE001' });
    } finally {
      await touched.close();
    }
    const untouched = await open(file, 'never');
    try {
      const error = await rejection(untouched.session.erase());
      expect(error).toMatchObject({ code: 'TOUCH_TIMEOUT', detail: { kind: 'status', sw: 0x6985, doing: 'erasing the HOTP key' } });
      expect((error as Error).message).not.toContain(SEED.toString('hex'));
      expect(await untouched.session.check()).toEqual({ programmed: true, serial: 'ERASE001' });
    } finally {
      await untouched.close();
    }
    const again = await open(file);
    try {
      await again.session.erase();
      expect(again.session.programmed).toBe(false);
    } finally {
      await again.close();
    }
  });

  it('PROGRAM without a touch is refused and stores nothing', async () => {
    const file = join(dir, 'notouch.json');
    const { session, close } = await open(file, 'never');
    try {
      await expect(session.program({ digits: 6, seed: SEED, serial: 'NOTOUCH1' })).rejects.toMatchObject({ code: 'TOUCH_TIMEOUT' });
      expect((await session.check()).programmed).toBe(false);
    } finally {
      await close();
    }
  });

  it('openAnyKey tells a --virtual FILE of the feitian dialect from an OATH one; openOathSession refuses it with hotp-only-key', async () => {
    const file = join(dir, 'any.json');
    const key = virtualFileKey({ file, dialect: 'feitian', create: true });
    const opened = await openAnyKey(key);
    try {
      expect(opened.kind).toBe('feitian');
    } finally {
      await opened.key.close();
    }
    await expect(openOathSession(virtualFileKey({ file }))).rejects.toMatchObject({ code: 'UNSUPPORTED', detail: { kind: 'hotp-only-key' } });
    const oath = await openAnyKey(virtualFileKey({ file: join(dir, 'oath.json'), dialect: 'yubikey', create: true }));
    try {
      expect(oath.kind).toBe('oath');
    } finally {
      await oath.key.close();
    }
  });

  it('the virtual Feitian key refuses the Nitrokey vendor command 0x70, as a plain U2F key would', async () => {
    const file = join(dir, 'no70.json');
    const key = await VirtualKey.open({ file, dialect: 'feitian' });
    const transport = await openCtapHidTransport(key.openLink(), 'virtual Feitian key');
    try {
      const error = await rejection(transport.transmit(Uint8Array.of(0x00, 0xa4, 0x04, 0x00)));
      expect(error).toBeInstanceOf(CtapHidDeviceError);
      expect((error as CtapHidDeviceError).ctapHidCode).toBe(0x01);
    } finally {
      await transport.close();
      await key.close();
    }
  });

  it('KEYTAP_TRACE shows CHECK and its serial, and hides the seed PROGRAM carries', async () => {
    const file = join(dir, 'trace.json');
    const key = await VirtualKey.open({ file, dialect: 'feitian' });
    const lines: string[] = [];
    const transport = traceApduTransport(await openCtapHidTransport(key.openLink(), 'virtual Feitian key', undefined, 'msg'), { apdu: true, hid: false, unsafe: false, log: (line) => lines.push(line) });
    try {
      const session = await FeitianSession.open(transport);
      await session.program({ digits: 6, seed: SEED, serial: 'TRACE001' });
    } finally {
      await transport.close();
      await key.close();
    }
    const text = lines.join('\n');
    expect(text).toContain('FEITIAN CHECK 00 E6 00 00');
    // The programmed key's CHECK answer: 11 bytes ending in the serial's ASCII.
    expect(text).toContain(`<= 9000 len=11 005108${Buffer.from('TRACE001').toString('hex')}`);
    expect(text).toMatch(/FEITIAN PROGRAM 00 09 00 00 Lc=35 \[redacted\]/u);
    expect(text.toLowerCase()).not.toContain(SEED.toString('hex'));
  });
});
