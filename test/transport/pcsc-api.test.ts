/**
 * What the PC/SC FFI layer does without pcscd: reader multi-strings, return-code names, each
 * platform's struct layout (koffi lays out the Windows and macOS structs here too; the expected
 * sizes are worked out from the headers, field by field, in the comments), and the error for a
 * library that is not there. The same calls against a real pcscd are test/pcsc/.
 */
import koffi from 'koffi';
import { describe, expect, it } from 'vitest';
import { SCARD, ScardError, declareStructs, openPcscLibrary, parseMultiString, pcscAbi, scardSymbol } from '../../src/device/transport/pcsc-api.js';

const bytes = (text: string, encoding: BufferEncoding = 'utf8'): Uint8Array => Uint8Array.from(Buffer.from(text, encoding));

describe('reader multi-strings', () => {
  it('splits names at NUL and stops at the empty name', () => {
    expect(parseMultiString(bytes('Yubico YubiKey OTP+FIDO+CCID 00 00\0Virtual PCD 00 00\0\0'))).toEqual(['Yubico YubiKey OTP+FIDO+CCID 00 00', 'Virtual PCD 00 00']);
    expect(parseMultiString(bytes('Virtual PCD 00 00\0\0Ignored after the end\0\0'))).toEqual(['Virtual PCD 00 00']);
  });

  it('reads an empty list as no readers', () => {
    expect(parseMultiString(bytes('\0'))).toEqual([]);
    expect(parseMultiString(bytes('\0\0'))).toEqual([]);
    expect(parseMultiString(new Uint8Array(0))).toEqual([]);
  });

  it('drops bytes after the last NUL (a list cut short)', () => {
    expect(parseMultiString(bytes('Reader A 00 00\0Read'))).toEqual(['Reader A 00 00']);
  });

  it('decodes UTF-8 (pcsc-lite, macOS) and keeps ANSI bytes as they are (Windows)', () => {
    expect(parseMultiString(bytes('Lecteur sans contact éèà 00 00\0\0'))).toEqual(['Lecteur sans contact éèà 00 00']);
    const ansi = Uint8Array.from([...Buffer.from('Leser '), 0xe4, 0xf6, 0xfc, 0, 0]);
    const [name] = parseMultiString(ansi, 'latin1');
    expect(Buffer.from(`${name}\0`, 'latin1')).toEqual(Buffer.from(ansi.subarray(0, ansi.length - 1)));
  });

  it('reads a list that is a view into a larger buffer', () => {
    const buffer = bytes('xxxxA\0B\0\0yyyy');
    expect(parseMultiString(buffer.subarray(4, 10))).toEqual(['A', 'B']);
  });
});

describe('return codes', () => {
  it('names the codes the transport tells apart', () => {
    expect(scardSymbol(0x80100069)).toBe('SCARD_W_REMOVED_CARD');
    expect(scardSymbol(0x8010001d)).toBe('SCARD_E_NO_SERVICE');
    expect(scardSymbol(0x8010000b)).toBe('SCARD_E_SHARING_VIOLATION');
    expect(scardSymbol(0x8010002e)).toBe('SCARD_E_NO_READERS_AVAILABLE');
    expect(scardSymbol(0x80100002)).toBe('SCARD_E_CANCELLED');
  });

  it('reads a 32-bit LONG (Windows, macOS: negative) and a 64-bit one (Linux: positive) alike', () => {
    expect(scardSymbol(-2146434967)).toBe('SCARD_W_REMOVED_CARD');
    expect(new ScardError('SCardTransmit', -2146434967).rc).toBe(0x80100069);
    expect(new ScardError('SCardTransmit', -2146434967).is('W_REMOVED_CARD')).toBe(true);
  });

  it('shows an unknown code in hex and says which call failed', () => {
    expect(scardSymbol(0x8010abcd)).toBe('0x8010ABCD');
    expect(new ScardError('SCardConnect', SCARD.E_PROTO_MISMATCH).message).toBe('SCardConnect failed: SCARD_E_PROTO_MISMATCH');
  });
});

describe('the ABI of each platform', () => {
  it('pcsc-lite on 64-bit Linux: DWORD and LONG are unsigned long / long (8 bytes), natural alignment', () => {
    const abi = pcscAbi('linux');
    expect(abi).toMatchObject({ library: 'libpcsclite.so.1', stringSuffix: '', packed: false, atrSize: 33 });
    const { readerState, ioRequest } = declareStructs(koffi, abi);
    // szReader 8 + pvUserData 8 + three DWORDs 3 × 8 = 40, rgbAtr[33] → 73, padded to 8 → 80.
    expect(koffi.offsetof(readerState, 'dwCurrentState')).toBe(16);
    expect(koffi.offsetof(readerState, 'rgbAtr')).toBe(40);
    expect(koffi.sizeof(readerState)).toBe(80);
    // two unsigned longs
    expect(koffi.sizeof(ioRequest)).toBe(16);
  });

  it('winscard on 64-bit Windows: 32-bit DWORD, pointer-sized handles, rgbAtr[36], the A functions, stdcall', () => {
    const abi = pcscAbi('win32');
    expect(abi).toMatchObject({ library: 'winscard.dll', stringSuffix: 'A', handle: 'uintptr_t', convention: '__stdcall', atrSize: 36, nameEncoding: 'latin1' });
    const { readerState, ioRequest } = declareStructs(koffi, abi);
    // 8 + 8 + 3 × 4 = 28, rgbAtr[36] → 64, already a multiple of 8.
    expect(koffi.offsetof(readerState, 'dwEventState')).toBe(20);
    expect(koffi.offsetof(readerState, 'rgbAtr')).toBe(28);
    expect(koffi.sizeof(readerState)).toBe(64);
    expect(koffi.sizeof(ioRequest)).toBe(8);
  });

  it('PCSC.framework on macOS: 32-bit DWORD and LONG, structs packed to 1 byte', () => {
    const abi = pcscAbi('darwin');
    expect(abi).toMatchObject({ library: '/System/Library/Frameworks/PCSC.framework/PCSC', stringSuffix: '', packed: true, atrSize: 33, long: 'int32_t', handle: 'int32_t' });
    const { readerState, ioRequest } = declareStructs(koffi, abi);
    // 8 + 8 + 3 × 4 = 28, rgbAtr[33] → 61, no padding.
    expect(koffi.offsetof(readerState, 'rgbAtr')).toBe(28);
    expect(koffi.sizeof(readerState)).toBe(61);
    expect(koffi.sizeof(ioRequest)).toBe(8);
  });

  it('the BSDs use pcsc-lite too', () => {
    expect(pcscAbi('freebsd').library).toBe('libpcsclite.so.1');
  });
});

describe('loading the library', () => {
  it('turns a missing libpcsclite.so.1 into UNSUPPORTED with what to install', async () => {
    const error = await openPcscLibrary({ ...pcscAbi('linux'), library: 'libpcsclite-not-installed.so.1' }).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'UNSUPPORTED',
      message: 'keytap cannot use smart card readers: the library libpcsclite is missing.',
      hint: expect.stringContaining('sudo apt install libpcsclite1 pcscd') as unknown,
    });
    expect((error as Error).message + String((error as { hint?: string }).hint)).not.toMatch(/npm|compiler|-dev\b/u);
  });

  it('names the system library on Windows and macOS', async () => {
    const error = await openPcscLibrary({ ...pcscAbi('darwin'), library: '/nonexistent/PCSC.framework/PCSC' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'UNSUPPORTED', message: expect.stringContaining('/nonexistent/PCSC.framework/PCSC') as unknown });
  });

  it('binds every function of this platform\'s library', async () => {
    // The real libpcsclite.so.1 of this machine: a misspelt name or a missing A variant would throw here.
    const library = await openPcscLibrary(pcscAbi());
    expect(library.abi.name).toBe(process.platform === 'win32' ? 'winscard' : process.platform === 'darwin' ? 'PCSC.framework' : 'pcsc-lite');
  });
});
