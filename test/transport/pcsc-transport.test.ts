/**
 * PcscApduTransport's decisions by SCARD_* return code, on a stand-in for the PC/SC library that
 * answers what pcsc-lite or winscard answer in cases a real pcscd + vpcd cannot be made to produce
 * on purpose (a reset by another program, a communication error with the card still there, the
 * service stopping mid-command). The same transport against a real pcscd is test/pcsc/pcsc.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { SCARD, ScardError } from '../../src/device/transport/pcsc-api.js';
import type { ScardCodeName } from '../../src/device/transport/pcsc-api.js';
import { PcscApduTransport, establishContext, isPcscUnavailable } from '../../src/device/transport/pcsc.js';
import { FakePcsc } from './fake-pcsc.js';
import type { Script } from './fake-pcsc.js';

/** An APDU whose data would be a secret: it must never show in an error. */
const SECRET_HEX = '5ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7';
const SECRET_APDU = Uint8Array.from([0x00, 0x01, 0x00, 0x00, 0x14, ...Buffer.from(SECRET_HEX, 'hex')]);

const fails = (code: ScardCodeName) => () => Promise.reject(new ScardError('SCardTransmit', SCARD[code]));

async function open(script: Script, busyWaitMs = 0): Promise<{ transport: PcscApduTransport; fake: FakePcsc }> {
  const fake = new FakePcsc(script);
  const transport = await PcscApduTransport.open('Reader 00 00', { description: 'Test key', library: fake, busyWaitMs });
  return { transport, fake };
}

function noSecrets(error: unknown): void {
  const text = `${(error as Error).message} ${(error as { hint?: string }).hint ?? ''}`;
  expect(text.toLowerCase()).not.toContain(SECRET_HEX);
}

describe('connecting', () => {
  it('retries while another program holds the card, then says BUSY and who may hold it', async () => {
    const fake = new FakePcsc({ connect: ['E_SHARING_VIOLATION'] });
    const started = Date.now();
    const error = await PcscApduTransport.open('Reader 00 00', { description: 'Test key', library: fake, busyWaitMs: 350 }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'BUSY', message: 'Test key is in use by another program.', hint: expect.stringContaining('gpgconf --kill scdaemon') as unknown });
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
    expect(fake.calls.filter((c) => c.startsWith('connect')).length).toBeGreaterThanOrEqual(3);
    // The context of a failed open is released.
    expect(fake.calls.at(-1)).toBe('release');
  });

  it('gets the card once the other program lets go', async () => {
    const { transport, fake } = await open({ connect: ['E_SHARING_VIOLATION', 'E_SHARING_VIOLATION', 'ok'] }, 2_000);
    expect(fake.calls.filter((c) => c.startsWith('connect'))).toEqual(['connect E_SHARING_VIOLATION', 'connect E_SHARING_VIOLATION', 'connect ok']);
    await transport.close();
  });

  it.each([
    ['E_UNKNOWN_READER', 'NO_KEY', 'Test key is not connected.'],
    ['E_NO_SMARTCARD', 'KEY_REMOVED', 'There is no usable card in Test key.'],
    ['W_REMOVED_CARD', 'KEY_REMOVED', 'There is no usable card in Test key.'],
    ['W_UNRESPONSIVE_CARD', 'KEY_REMOVED', 'There is no usable card in Test key.'],
    ['E_NO_SERVICE', 'NO_KEY', 'The PC/SC service (pcscd) is not running, so no smart card reader can be reached.'],
    ['E_PROTO_MISMATCH', 'DEVICE_ERROR', 'Connecting to Test key failed (SCARD_E_PROTO_MISMATCH).'],
  ] as const)('%s → %s', async (code, keytapCode, message) => {
    const error = await open({ connect: [code] }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: keytapCode, message });
  });

  it('says which reader is missing in structure', async () => {
    const error = await open({ connect: ['E_UNKNOWN_READER'] }).catch((e: unknown) => e);
    expect(error).toMatchObject({ detail: { kind: 'reader-missing', reader: 'Reader 00 00' } });
  });

  it('treats a service that is not there as PC/SC being unavailable, for discovery', async () => {
    for (const code of ['E_NO_SERVICE', 'E_SERVICE_STOPPED'] as const) {
      const error = await establishContext(new FakePcsc({ establish: code })).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'NO_KEY', hint: expect.stringContaining('pcscd') as unknown });
      expect(isPcscUnavailable(error)).toBe(true);
    }
    const other = await establishContext(new FakePcsc({ establish: 'E_NO_MEMORY' })).catch((e: unknown) => e);
    expect(other).toMatchObject({ code: 'DEVICE_ERROR', message: 'Connecting to the PC/SC service failed (SCARD_E_NO_MEMORY).' });
    expect(isPcscUnavailable(other)).toBe(false);
  });
});

describe('transmitting', () => {
  it('splits the answer into data and status word', async () => {
    const { transport } = await open({ transmit: () => Promise.resolve(Uint8Array.of(1, 2, 3, 0x61, 0x10)) });
    const answer = await transport.transmit(SECRET_APDU);
    expect({ data: [...answer.data], sw: answer.sw }).toEqual({ data: [1, 2, 3], sw: 0x6110 });
    await transport.close();
  });

  it('a removed card makes the transport unusable, with the same error every time', async () => {
    const { transport, fake } = await open({ transmit: fails('W_REMOVED_CARD') });
    const first = await transport.transmit(SECRET_APDU).catch((e: unknown) => e);
    expect(first).toMatchObject({ code: 'KEY_REMOVED', message: 'Test key was removed.', hint: 'Plug the key in again and retry.' });
    noSecrets(first);
    const transmits = fake.calls.filter((c) => c === 'transmit').length;
    await expect(transport.transmit(SECRET_APDU)).rejects.toBe(first);
    expect(fake.calls.filter((c) => c === 'transmit').length).toBe(transmits);
    await transport.close();
  });

  it('a communication error is a removal only when the card has gone', async () => {
    const gone = await open({ transmit: fails('F_COMM_ERROR'), status: 'W_REMOVED_CARD' });
    expect(await gone.transport.transmit(SECRET_APDU).catch((e: unknown) => e)).toMatchObject({ code: 'KEY_REMOVED' });
    let first = true;
    const there = await open({
      transmit: () => (first ? ((first = false), fails('F_COMM_ERROR')()) : Promise.resolve(Uint8Array.of(0x90, 0x00))),
      status: 'ok',
    });
    const error = await there.transport.transmit(SECRET_APDU).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'DEVICE_ERROR', message: 'Talking to Test key failed (SCARD_F_COMM_ERROR).' });
    noSecrets(error);
    expect(there.fake.calls).toContain('status');
    // …and the transport still works.
    expect((await there.transport.transmit(SECRET_APDU)).sw).toBe(0x9000);
  });

  it('names the service stopping and a reset by another program', async () => {
    const stopped = await open({ transmit: fails('E_SERVICE_STOPPED') });
    expect(await stopped.transport.transmit(SECRET_APDU).catch((e: unknown) => e)).toMatchObject({ code: 'KEY_REMOVED', message: 'The PC/SC service stopped while talking to Test key.' });
    const reset = await open({ transmit: fails('W_RESET_CARD') });
    expect(await reset.transport.transmit(SECRET_APDU).catch((e: unknown) => e)).toMatchObject({ code: 'DEVICE_ERROR', message: 'Test key was reset by another program.', hint: 'Retry.' });
  });

  it('an empty answer is a removal when the card goes within the settle time, else a protocol error', async () => {
    const gone = await open({ transmit: () => Promise.resolve(new Uint8Array(0)), status: 'W_REMOVED_CARD' });
    expect(await gone.transport.transmit(SECRET_APDU).catch((e: unknown) => e)).toMatchObject({ code: 'KEY_REMOVED' });
    const there = await open({ transmit: () => Promise.resolve(Uint8Array.of(0x90)) });
    const started = Date.now();
    expect(await there.transport.transmit(SECRET_APDU).catch((e: unknown) => e)).toMatchObject({ code: 'PROTOCOL', message: 'Test key answered 1 byte(s), without a status word.' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_400);
  });

  it('a deadline answers at once; the next APDU and the release wait for the native call', async () => {
    let finish!: (answer: Uint8Array) => void;
    let calls = 0;
    const { transport, fake } = await open({
      transmit: () => {
        calls++;
        return calls === 1 ? new Promise((resolve) => (finish = resolve)) : Promise.resolve(Uint8Array.of(0x90, 0x00));
      },
    });
    const started = Date.now();
    await expect(transport.transmit(SECRET_APDU, { timeoutMs: 100 })).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(Date.now() - started).toBeLessThan(1_000);
    const next = transport.transmit(SECRET_APDU);
    await new Promise((r) => setTimeout(r, 50));
    expect(calls).toBe(1); // still waiting for the first SCardTransmit
    finish(Uint8Array.of(0x90, 0x00));
    expect((await next).sw).toBe(0x9000);

    // close() during a native call: resolves at once, releases after the call.
    let finishAgain!: (answer: Uint8Array) => void;
    const hanging = new Promise<Uint8Array>((resolve) => (finishAgain = resolve));
    const slow = await open({ transmit: () => hanging });
    const abandoned = slow.transport.transmit(SECRET_APDU, { timeoutMs: 50 }).catch((e: unknown) => e);
    expect(await abandoned).toMatchObject({ code: 'TIMEOUT' });
    await slow.transport.close();
    expect(slow.fake.calls).not.toContain('disconnect');
    finishAgain(Uint8Array.of(0x90, 0x00));
    await expect.poll(() => slow.fake.calls.slice(-2)).toEqual(['disconnect', 'release']);
    await expect(slow.transport.transmit(SECRET_APDU)).rejects.toMatchObject({ code: 'CANCELLED' });
    await transport.close();
    expect(fake.calls.slice(-2)).toEqual(['disconnect', 'release']);
  });

  it('an abort answers at once with CANCELLED', async () => {
    const controller = new AbortController();
    const { transport } = await open({ transmit: () => new Promise(() => undefined) });
    setTimeout(() => controller.abort(), 30);
    await expect(transport.transmit(SECRET_APDU, { signal: controller.signal })).rejects.toMatchObject({ code: 'CANCELLED' });
  });
});
