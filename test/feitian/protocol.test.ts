// The Feitian/HyperFIDO HOTP APDUs against the bytes of docs/protocols.md §4.3 (hyperhotp's
// src/core/hyperhotp.c), and the reading of their answers as hyperhotp reads them.
import { describe, expect, it } from 'vitest';
import {
  checkAnswerFor,
  checkApdu,
  eraseApdu,
  parseCheckAnswer,
  parseConfirmAnswer,
  parseProgramData,
  programApdu,
  programData,
  selectApdu,
} from '../../src/device/feitian/protocol.js';

const hex = (s: string): string => s.replace(/\s+/gu, '').toLowerCase();
const bytes = (s: string): Uint8Array => Uint8Array.from(Buffer.from(hex(s), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
/** RFC 4226's test seed, "12345678901234567890": exactly 20 bytes, as the key wants. */
const SEED = Buffer.from('12345678901234567890', 'ascii');

describe('Feitian HOTP APDUs', () => {
  it('SELECT, CHECK and ERASE are the bytes hyperhotp sends', () => {
    expect(toHex(selectApdu())).toBe(hex('00 A4 04 00 09 D1 56 00 01 32 83 26 01 01'));
    expect(toHex(checkApdu())).toBe(hex('00 E6 00 00'));
    expect(toHex(eraseApdu())).toBe(hex('00 07 00 00'));
  });

  it('PROGRAM data: magic 53 16 01 10, digits, 20-byte seed, 51 08 and the ASCII serial (35 bytes)', () => {
    const data = programData({ digits: 6, seed: SEED, serial: '12345678' });
    expect(data.length).toBe(35);
    expect(toHex(data)).toBe(hex(`53 16 01 10 06 ${SEED.toString('hex')} 51 08 3132333435363738`));
    const eight = programData({ digits: 8, seed: SEED, serial: 'KT000042' });
    expect(eight[4]).toBe(0x08);
    expect(Buffer.from(eight.subarray(27)).toString('ascii')).toBe('KT000042');
  });

  it('PROGRAM APDU is 00 09 00 00 23 and the data: hyperhotp\'s 40-byte buffer', () => {
    const apdu = programApdu({ digits: 8, seed: SEED, serial: '00000001' });
    expect(apdu.length).toBe(0x28);
    expect(toHex(apdu.subarray(0, 9))).toBe(hex('00 09 00 00 23 53 16 01 10'));
    // hyperhotp: digits at [9], seed from [10], serial from [32].
    expect(apdu[9]).toBe(8);
    expect(toHex(apdu.subarray(10, 30))).toBe(SEED.toString('hex'));
    expect(toHex(apdu.subarray(30, 32))).toBe('5108');
    expect(Buffer.from(apdu.subarray(32)).toString('ascii')).toBe('00000001');
  });

  it('refuses what the data cannot carry, without echoing the seed', () => {
    expect(() => programData({ digits: 7, seed: SEED, serial: '12345678' })).toThrow(/6 or 8 digits, not 7/u);
    expect(() => programData({ digits: 6, seed: SEED.subarray(0, 16), serial: '12345678' })).toThrow(/20-byte seed, not 16 bytes/u);
    expect(() => programData({ digits: 6, seed: SEED, serial: '1234567' })).toThrow(/exactly 8/u);
    expect(() => programData({ digits: 6, seed: SEED, serial: '1234 678' })).toThrow(/exactly 8/u);
    expect(() => programData({ digits: 6, seed: SEED, serial: '1234567é' })).toThrow(/exactly 8/u);
  });

  it('parseProgramData is programData\'s inverse and refuses other shapes', () => {
    const token = { digits: 8, seed: SEED, serial: 'AB-12_34' };
    expect(parseProgramData(programData(token))).toEqual({ digits: 8, seed: Uint8Array.from(SEED), serial: 'AB-12_34' });
    const broken = programData(token);
    broken[0] = 0x54;
    expect(parseProgramData(broken)).toBeUndefined();
    expect(parseProgramData(programData(token).subarray(1))).toBeUndefined();
  });
});

describe('reading the answers as hyperhotp does', () => {
  it('CHECK: [11] = 90 programmed with the serial at [3..10]; [11] = 00 or a short answer not programmed', () => {
    expect(parseCheckAnswer(bytes('00 51 08 3132333435363738 90 00'))).toEqual({ programmed: true, serial: '12345678' });
    expect(parseCheckAnswer(bytes('90 00'))).toEqual({ programmed: false });
    expect(parseCheckAnswer(bytes('00 00 00 0000000000000000 00 90 00'))).toEqual({ programmed: false });
    expect(parseCheckAnswer(bytes('00 51 08 3132333435363738 6A 82'))).toBeUndefined();
  });

  it('CHECK: an answer not ending in 90 00 is not "erased" (a key without the applet answers 6D00 or 6A82)', () => {
    expect(parseCheckAnswer(bytes('6D 00'))).toBeUndefined();
    expect(parseCheckAnswer(bytes('6A 82'))).toBeUndefined();
    expect(parseCheckAnswer(bytes('00 00 00 0000000000000000 00 6D 00'))).toBeUndefined();
    expect(parseCheckAnswer(bytes(''))).toBeUndefined();
  });

  it('the virtual key answers CHECK so that the reading gives back its state', () => {
    expect(parseCheckAnswer(checkAnswerFor('KT123456'))).toEqual({ programmed: true, serial: 'KT123456' });
    expect(parseCheckAnswer(checkAnswerFor(undefined))).toEqual({ programmed: false });
  });

  it('ERASE/PROGRAM: [0] 90 done, 69 refused, anything else unknown', () => {
    expect(parseConfirmAnswer(bytes('90 00'))).toBe('done');
    expect(parseConfirmAnswer(bytes('69 85'))).toBe('refused');
    expect(parseConfirmAnswer(bytes('6A 80'))).toBeUndefined();
  });
});
