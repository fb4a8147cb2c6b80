// The macOS and Windows executables, read as files (the Windows one also runs under Wine, see
// test/windows/): the right CPU, the program injected, and no signature left over — the Node
// project's signature no longer matches once the program is in, and a broken signature is worse
// than none (macOS kills such a program at start).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { artifact } from '../support/dist.js';

const MH_MAGIC_64 = 0xfeedfacf;
const CPU_TYPE_X86_64 = 0x01000007;
const LC_SEGMENT_64 = 0x19;
const LC_CODE_SIGNATURE = 0x1d;

describe('the macOS executable', () => {
  it('is an x86-64 Mach-O program with the NODE_SEA segment and no code signature', () => {
    const file = readFileSync(artifact('darwin-x64'));
    expect([file.readUInt32LE(0), file.readUInt32LE(4)]).toEqual([MH_MAGIC_64, CPU_TYPE_X86_64]);
    const commands = file.readUInt32LE(16);
    const kinds: number[] = [];
    const segments: string[] = [];
    for (let i = 0, offset = 32; i < commands; i++) {
      const kind = file.readUInt32LE(offset);
      kinds.push(kind);
      if (kind === LC_SEGMENT_64) segments.push(file.toString('latin1', offset + 8, offset + 24).replace(/\0+$/u, ''));
      offset += file.readUInt32LE(offset + 4);
    }
    expect(segments).toContain('NODE_SEA');
    expect(kinds).not.toContain(LC_CODE_SIGNATURE);
  });
});

describe('the Windows executable', () => {
  it('is an x86-64 PE program with the program injected and no Authenticode signature', () => {
    const file = readFileSync(artifact('win-x64'));
    expect(file.toString('latin1', 0, 2)).toBe('MZ');
    const pe = file.readUInt32LE(0x3c);
    expect(file.toString('latin1', pe, pe + 4)).toBe('PE\0\0');
    expect(file.readUInt16LE(pe + 4)).toBe(0x8664); // IMAGE_FILE_MACHINE_AMD64
    const optional = pe + 24;
    expect(file.readUInt16LE(optional)).toBe(0x20b); // PE32+
    // Data directory 4 is the certificate table (the Authenticode signature): gone.
    const certificateTable = optional + 112 + 4 * 8;
    expect([file.readUInt32LE(certificateTable), file.readUInt32LE(certificateTable + 4)]).toEqual([0, 0]);
    // postject puts the blob in an RT_RCDATA resource named NODE_SEA_BLOB (UTF-16 in the resource directory).
    expect(file.includes(Buffer.from('NODE_SEA_BLOB', 'utf16le'))).toBe(true);
  });
});
