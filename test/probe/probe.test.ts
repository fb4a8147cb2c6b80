// `keytap doctor --probe`, the device layer: the probe of one HID link against each virtual-key
// dialect at the 64-byte report boundary, against devices that answer none of it (errors to
// everything, silence, garbage), and the getInfo parse against python3-fido2's (Info.from_dict(cbor.decode(...)), or Info(bytes) in Debian 12's 0.9).
import { execFileSync } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FeitianSession } from '../../src/device/feitian/session.js';
import { openCtapHidTransport, openOathSession } from '../../src/device/open.js';
import { decodeCbor, readGetInfo } from '../../src/device/probe/cbor.js';
import { probeHidLink } from '../../src/device/probe/hid.js';
import { probeHidDevices, probePcscReader, readerNameForReport } from '../../src/device/probe/run.js';
import { CtapHidCommand, CtapHidError, parsePacket } from '../../src/device/transport/ctaphid-frames.js';
import type { HidLink } from '../../src/device/transport/types.js';
import type { KeyDialect } from '../../src/device/key-dialect.js';
import { VirtualKey } from '../../src/emulator/virtual-key.js';
import { tempDir } from '../support/cli.js';
import { FakeLink, errorPacket, message, scriptedKey } from '../transport/fake-link.js';
import { FakePcsc } from '../transport/fake-pcsc.js';
import type { Script } from '../transport/fake-pcsc.js';

const dir = tempDir('keytap-probe-');
afterAll(() => rm(dir, { recursive: true, force: true }));

/** A link that keeps what the client wrote, so a test can say which commands went out. */
function recording(link: HidLink): { link: HidLink; commands: () => Array<[number, number | undefined]> } {
  const written: Uint8Array[] = [];
  return {
    link: {
      reportSize: link.reportSize,
      write: (report) => {
        written.push(Uint8Array.from(report));
        return link.write(report);
      },
      read: (timeoutMs, signal) => link.read(timeoutMs, signal),
      close: () => link.close(),
    },
    // [CTAPHID command, the APDU's INS where the command carries one]; every request here fits one packet.
    commands: () =>
      written
        .map(parsePacket)
        .filter((p) => p.kind === 'init')
        .map((p) => [p.cmd, p.cmd === CtapHidCommand.MSG || p.cmd === CtapHidCommand.VENDOR_SECRETS ? p.data[1] : undefined]),
  };
}

async function virtualKey(dialect: KeyDialect, name: string): Promise<{ key: VirtualKey; file: string }> {
  const file = join(dir, `${name}.json`);
  return { key: await VirtualKey.open({ file, dialect, touch: { mode: 'auto', delayMs: 0 } }), file };
}

describe('the probe of one HID link, against each virtual dialect', () => {
  it('nitrokey3: INIT, U2F VERSION, getInfo refused (no CTAP2), OATH over 0x70 as the Secrets App; its serial only when asked for; only reading commands sent, the key file untouched', async () => {
    const { key, file } = await virtualKey('nitrokey3', 'nk3');
    try {
      const before = await readFile(file, 'utf8');
      const rec = recording(key.openLink());
      const probe = await probeHidLink(rec.link);
      expect(probe.init).toMatchObject({ outcome: { status: 'answered' }, protocolVersion: 2, deviceVersion: '1.6.0', capabilities: { raw: 1, wink: true, cbor: false, nmsg: false } });
      expect(probe.u2fVersion).toEqual({ outcome: { status: 'answered', sw: '9000' }, version: 'U2F_V2' });
      expect(probe.ctap2GetInfo).toEqual({ outcome: { status: 'ctaphid-error', error: 'INVALID_CMD', code: CtapHidError.INVALID_CMD } });
      expect(probe.oathOverCtapHid).toEqual({ outcome: { status: 'answered', sw: '9000' }, version: '4.13.0', dialect: 'nitrokey3', passwordSet: false, pinSet: false });
      expect(probe.feitian).toEqual({ outcome: { status: 'answered', sw: '6A82' } });
      expect(probe.speaks).toEqual(['oath-over-ctaphid']);
      // INIT, MSG VERSION (03), CBOR, 0x70 SELECT (A4), MSG SELECT (A4): nothing else.
      expect(rec.commands()).toEqual([
        [CtapHidCommand.INIT, undefined],
        [CtapHidCommand.MSG, 0x03],
        [CtapHidCommand.CBOR, undefined],
        [CtapHidCommand.VENDOR_SECRETS, 0xa4],
        [CtapHidCommand.MSG, 0xa4],
      ]);
      expect(await readFile(file, 'utf8')).toBe(before);

      const withSerial = await probeHidLink(key.openLink(), { includeSerials: true });
      expect(key.serial).toMatch(/^[0-9A-F]{8}$/u);
      expect(withSerial.oathOverCtapHid.serial).toBe(key.serial);
    } finally {
      await key.close();
    }
  });

  it('yubikey: the YKOATH SELECT answer reduced to version and "password set" (no salt, no challenge)', async () => {
    const { key, file } = await virtualKey('yubikey', 'yk');
    try {
      const probe = await probeHidLink(key.openLink(), { includeSerials: true });
      expect(probe.init.deviceVersion).toBe('5.4.3');
      expect(probe.u2fVersion.version).toBe('U2F_V2');
      expect(probe.oathOverCtapHid).toEqual({ outcome: { status: 'answered', sw: '9000' }, version: '5.4.3', dialect: 'yubikey', passwordSet: false });
      expect(probe.feitian.outcome).toEqual({ status: 'answered', sw: '6A82' });

      const opened = await openOathSession({ id: 'yk', name: 'yk', open: () => openCtapHidTransport(key.openLink(), 'yk') });
      await opened.session.setPassword('correct horse');
      await opened.close();
      const salt = (JSON.parse(await readFile(file, 'utf8')) as { salt: string }).salt;
      const locked = await probeHidLink(key.openLink(), { includeSerials: true });
      expect(locked.oathOverCtapHid).toEqual({ outcome: { status: 'answered', sw: '9000' }, version: '5.4.3', dialect: 'yubikey', passwordSet: true });
      expect(JSON.stringify(locked)).not.toContain(salt);
    } finally {
      await key.close();
    }
  });

  it('feitian: 0x70 refused, the Feitian SELECT 9000 and CHECK "programmed" without a touch; the token serial only when asked for', async () => {
    const { key, file } = await virtualKey('feitian', 'feitian');
    try {
      const transport = await openCtapHidTransport(key.openLink(), 'virtual Feitian key', undefined, 'msg');
      const blank = await probeHidLink(key.openLink());
      expect(blank.feitian).toEqual({ outcome: { status: 'answered', sw: '9000' }, check: { outcome: { status: 'answered', sw: '9000' }, programmed: false } });
      await (await FeitianSession.open(transport)).program({ digits: 6, seed: new Uint8Array(20).fill(7), serial: 'KT765432' });
      await transport.close();
      const before = await readFile(file, 'utf8');

      const rec = recording(key.openLink());
      const probe = await probeHidLink(rec.link);
      expect(probe.u2fVersion.version).toBe('U2F_V2');
      expect(probe.oathOverCtapHid).toEqual({ outcome: { status: 'ctaphid-error', error: 'INVALID_CMD', code: CtapHidError.INVALID_CMD } });
      expect(probe.feitian).toEqual({ outcome: { status: 'answered', sw: '9000' }, check: { outcome: { status: 'answered', sw: '9000' }, programmed: true } });
      expect(JSON.stringify(probe)).not.toContain('KT765432');
      expect(probe.speaks).toEqual(['feitian-hotp']);
      // ERASE (07) and PROGRAM (09) never go out; CHECK (E6) is the only Feitian command after SELECT.
      expect(rec.commands().filter(([cmd]) => cmd === CtapHidCommand.MSG).map(([, ins]) => ins)).toEqual([0x03, 0xa4, 0xe6]);
      expect(await readFile(file, 'utf8')).toBe(before);

      const withSerial = await probeHidLink(key.openLink(), { includeSerials: true });
      expect(withSerial.feitian.check?.serial).toBe('KT765432');
    } finally {
      await key.close();
    }
  });
});

describe('the probe of a device that answers none of it', () => {
  it('INIT answered, every command refused with a CTAPHID error: each question records the error, nothing is thrown', async () => {
    const { link, requests } = scriptedKey((request) => [errorPacket(request.cid, CtapHidError.OTHER)]);
    const probe = await probeHidLink(link, { questionTimeoutMs: 300 });
    const refused = { status: 'ctaphid-error', error: 'OTHER', code: CtapHidError.OTHER };
    expect(probe.init.outcome).toEqual({ status: 'answered' });
    expect(probe.init.capabilities).toMatchObject({ raw: 0x05, wink: true, cbor: true });
    expect(probe.u2fVersion.outcome).toEqual(refused);
    expect(probe.ctap2GetInfo.outcome).toEqual(refused);
    expect(probe.oathOverCtapHid.outcome).toEqual(refused);
    expect(probe.feitian.outcome).toEqual(refused);
    expect(probe.speaks).toEqual([]);
    expect(requests.map((r) => r.cmd)).toEqual([CtapHidCommand.MSG, CtapHidCommand.CBOR, CtapHidCommand.VENDOR_SECRETS, CtapHidCommand.MSG]);
    expect(link.closed).toBe(true);
  });

  it('a device that never answers: INIT times out once, the rest is not asked, and the probe ends', async () => {
    const link = new FakeLink();
    const probe = await probeHidLink(link, { questionTimeoutMs: 200 });
    expect(probe.init.outcome).toEqual({ status: 'no-answer', waitedMs: 200 });
    for (const question of [probe.u2fVersion, probe.ctap2GetInfo, probe.oathOverCtapHid, probe.feitian]) {
      expect(question.outcome).toEqual({ status: 'not-asked', reason: 'no-channel' });
    }
    expect(link.written.length).toBe(1); // the INIT, and nothing after it
    expect(link.closed).toBe(true);
  });

  it('a device that answers INIT and then nothing: every question ends in "no answer"', async () => {
    const { link } = scriptedKey(() => undefined);
    const probe = await probeHidLink(link, { questionTimeoutMs: 200 });
    expect(probe.init.outcome.status).toBe('answered');
    for (const question of [probe.u2fVersion, probe.ctap2GetInfo, probe.oathOverCtapHid, probe.feitian]) {
      expect(question.outcome).toEqual({ status: 'no-answer', waitedMs: 200 });
    }
  });

  it('garbled answers (the wrong command, a short APDU answer, CBOR that is not a map) are recorded as such', async () => {
    const { link } = scriptedKey((request) => {
      if (request.cmd === CtapHidCommand.MSG) return message(request.cid, CtapHidCommand.PING, [1, 2, 3]);
      if (request.cmd === CtapHidCommand.CBOR) return message(request.cid, CtapHidCommand.CBOR, [0x00, 0x18]); // a cut-short integer
      return message(request.cid, request.cmd, [0x90]); // one byte: no status word
    });
    const probe = await probeHidLink(link, { questionTimeoutMs: 300 });
    expect(probe.u2fVersion.outcome).toMatchObject({ status: 'failed', error: 'PROTOCOL' });
    expect(probe.ctap2GetInfo).toMatchObject({ outcome: { status: 'answered' }, ctapStatus: 0, unreadable: expect.stringMatching(/cut short/u) });
    expect(probe.oathOverCtapHid.outcome).toMatchObject({ status: 'failed', error: 'PROTOCOL', message: expect.stringMatching(/too short for a status word/u) });
    expect(probe.speaks).toEqual([]);
  });

  it('a cancelled probe stops with CANCELLED', async () => {
    const link = new FakeLink();
    const controller = new AbortController();
    const done = probeHidLink(link, { questionTimeoutMs: 5_000, signal: controller.signal });
    controller.abort();
    await expect(done).rejects.toMatchObject({ code: 'CANCELLED' });
  });
});

describe('which HID devices are probed', () => {
  it('FIDO interfaces only, once per path, each with its device interfaces; the USB serial only when asked for', async () => {
    const opened: string[] = [];
    const devices = [
      { vendorId: 0x1234, productId: 0x5678, path: '/dev/hidraw1', interface: 1, usagePage: 0xf1d0, usage: 1, serialNumber: 'SN-998877', product: 'Mystery Key', manufacturer: 'ACME' },
      { vendorId: 0x1234, productId: 0x5678, path: '/dev/hidraw0', interface: 0, usagePage: 0x0001, usage: 6, serialNumber: 'SN-998877' },
      { vendorId: 0x1234, productId: 0x5678, path: '/dev/hidraw1', interface: 1, usagePage: 0xf1d0, usage: 1, serialNumber: 'SN-998877' },
      { vendorId: 0x046d, productId: 0xc077, path: '/dev/hidraw2', interface: 0, usagePage: 0x0001, usage: 2 },
    ];
    const openHid = (path: string): Promise<HidLink> => {
      opened.push(path);
      return Promise.resolve(new FakeLink());
    };
    const [probe, ...rest] = await probeHidDevices(devices, { openHid, questionTimeoutMs: 50 });
    expect(rest).toEqual([]);
    expect(opened).toEqual(['/dev/hidraw1']);
    expect(probe).toMatchObject({ kind: 'hid', name: 'Mystery Key', vendorId: '1234', productId: '5678', manufacturer: 'ACME', product: 'Mystery Key', path: '/dev/hidraw1' });
    expect(probe!.knownAs).toBeUndefined();
    expect(probe!.interfaces).toEqual([
      { interface: 1, usagePage: 0xf1d0, usage: 1 },
      { interface: 0, usagePage: 0x0001, usage: 6 },
    ]);
    expect(JSON.stringify(probe)).not.toContain('SN-998877');
    const [withSerial] = await probeHidDevices(devices, { openHid, questionTimeoutMs: 50, includeSerials: true });
    expect(withSerial!.usbSerial).toBe('SN-998877');
  });
});

describe('serials in failures', () => {
  it("a HID device whose path and open error carry its USB serial: the report has neither, unless serials were asked for", async () => {
    const path = String.raw`\\?\hid#vid_1234&pid_5678#sn-998877#{4d1e55b2-f16f-11cf-88cb-001111000030}`;
    const devices = [{ vendorId: 0x1234, productId: 0x5678, path, interface: 0, usagePage: 0xf1d0, usage: 1, serialNumber: 'SN-998877' }];
    const openHid = (p: string): Promise<HidLink> => Promise.reject(new Error(`cannot open device with path ${p}`));
    const [probe] = await probeHidDevices(devices, { openHid, questionTimeoutMs: 50 });
    expect(probe!.init.outcome).toMatchObject({ status: 'failed', message: expect.stringContaining('(serial left out)') as unknown });
    expect(probe!.path).toContain('(serial left out)');
    expect(JSON.stringify(probe).toLowerCase()).not.toContain('sn-998877');
    const [withSerial] = await probeHidDevices(devices, { openHid, questionTimeoutMs: 50, includeSerials: true });
    expect(withSerial!.path).toBe(path);
  });

  const reader = { name: 'Nitrokey Nitrokey 3 [CCID/ICCD Interface] (0123456789ABCDEF) 00 00', state: 0x22, cardPresent: true, atr: Uint8Array.of(0x3b, 0x8f) };
  const probeWith = (script: Script, questionTimeoutMs = 200) => probePcscReader(reader, { pcscLibrary: new FakePcsc(script), questionTimeoutMs });

  it.each([
    ['busy', { connect: ['E_SHARING_VIOLATION'] }, 'BUSY'],
    ['no usable card', { connect: ['W_UNRESPONSIVE_CARD'] }, 'KEY_REMOVED'],
    ['reader gone', { connect: ['E_UNKNOWN_READER'] }, 'NO_KEY'],
    ['failed transmit', { transmit: () => Promise.reject(new Error('F_COMM')) }, 'DEVICE_ERROR'],
  ] as const)('a reader whose name holds a serial, %s: the failure is in the report, the serial is not', async (_case, script, code) => {
    const probe = await probeWith(script as Script);
    expect(probe.oath.outcome).toMatchObject({ status: 'failed', error: code, message: expect.stringContaining('(serial left out)') as unknown });
    expect(JSON.stringify(probe)).not.toContain('0123456789ABCDEF');
  });

  it('a reader whose SCardConnect never returns: the probe goes on after the question timeout, and lets the card and context go once it returns', async () => {
    const fake = new FakePcsc({ connect: ['hang'] });
    const probe = await probePcscReader(reader, { pcscLibrary: fake, questionTimeoutMs: 100 });
    expect(probe.oath.outcome).toEqual({ status: 'no-answer', waitedMs: 100 });
    expect(fake.calls).not.toContain('release');
    fake.finishHangingConnect();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(fake.calls.slice(-2)).toEqual(['disconnect', 'release']);
  });
});

describe('reader names in the report', () => {
  it("leave out the USB serial pcsc-lite puts in parentheses, unless serials were asked for", () => {
    const name = 'Nitrokey Nitrokey 3 [CCID/ICCD Interface] (0123456789ABCDEF) 00 00';
    expect(readerNameForReport(name, false)).toBe('Nitrokey Nitrokey 3 [CCID/ICCD Interface] (serial left out) 00 00');
    expect(readerNameForReport(name, true)).toBe(name);
    expect(readerNameForReport('Yubico YubiKey OTP+FIDO+CCID 00 00', false)).toBe('Yubico YubiKey OTP+FIDO+CCID 00 00');
  });
});

const PYTHON = '/usr/bin/python3';
function hasFido2(): boolean {
  try {
    execFileSync(PYTHON, ['-c', 'import fido2.ctap2'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(!hasFido2())('getInfo against python3-fido2', () => {
  it('reads versions, extensions, AAGUID and options as fido2 Info does, from bytes fido2 encoded', () => {
    const script = `
import json
from fido2 import cbor
from fido2.ctap2 import Info
data = cbor.encode({1: ["U2F_V2", "FIDO_2_0", "FIDO_2_1"], 2: ["credProtect", "hmac-secret"], 3: bytes.fromhex("2fc0579f811347eab116bb5a8db9202a"), 4: {"rk": True, "up": True, "plat": False, "clientPin": False}, 5: 1200, 6: [1, 2]})
# fido2 0.9 (Debian 12) builds Info from the CBOR bytes; 1.x from the decoded map
info = Info.from_dict(cbor.decode(data)) if hasattr(Info, "from_dict") else Info(data)
print(json.dumps({"hex": data.hex(), "versions": info.versions, "extensions": info.extensions, "aaguid": bytes(info.aaguid).hex(), "options": info.options}))
`;
    const peer = JSON.parse(execFileSync(PYTHON, ['-c', script], { encoding: 'utf8' })) as { hex: string; versions: string[]; extensions: string[]; aaguid: string; options: Record<string, boolean> };
    const ours = readGetInfo(decodeCbor(Buffer.from(peer.hex, 'hex')));
    expect(ours).toEqual({ versions: peer.versions, extensions: peer.extensions, aaguid: peer.aaguid, options: peer.options });
  });
});
