/**
 * A transport that replays a transcript (LedgerHQ hw-transport-mocker style):
 *
 *   => 00a4040007a0000005272101      command APDU the client must send, byte for byte
 *   <= 790305020471084bb7a7fad7af401b9000   the answer, data ‖ SW (ISO order)
 *
 * A command that differs from the transcript fails the test at once; `assertDone()` fails when
 * the client skipped some of it.
 */
import type { ApduResponse, ApduTransport, TransmitOptions } from '../../src/device/transport/types.js';

export class ReplayTransport implements ApduTransport {
  readonly description = 'replay';
  private readonly exchanges: Array<{ command: string; response: string }> = [];
  private position = 0;
  readonly sent: string[] = [];

  constructor(transcript: string) {
    const lines = transcript
      .split('\n')
      .map((l) => l.replace(/#.*$/u, '').trim())
      .filter(Boolean)
      // A line without => or <= continues the one before it.
      .reduce<string[]>((joined, line) => {
        if (line.startsWith('=>') || line.startsWith('<=') || joined.length === 0) joined.push(line);
        else joined[joined.length - 1] += ` ${line}`;
        return joined;
      }, []);
    for (let i = 0; i < lines.length; i += 2) {
      const command = lines[i]!;
      const response = lines[i + 1];
      if (!command.startsWith('=>') || !response?.startsWith('<=')) throw new Error(`Bad transcript near "${command}"`);
      this.exchanges.push({ command: clean(command.slice(2)), response: clean(response.slice(2)) });
    }
  }

  transmit(apdu: Uint8Array, _options?: TransmitOptions): Promise<ApduResponse> {
    const actual = Buffer.from(apdu).toString('hex');
    this.sent.push(actual);
    const next = this.exchanges[this.position++];
    if (!next) return Promise.reject(new Error(`Unexpected APDU after the transcript ended: ${actual}`));
    if (next.command !== actual) return Promise.reject(new Error(`APDU mismatch at exchange ${this.position}:\n expected ${next.command}\n actual   ${actual}`));
    const bytes = Buffer.from(next.response, 'hex');
    return Promise.resolve({ data: Uint8Array.from(bytes.subarray(0, -2)), sw: bytes.readUInt16BE(bytes.length - 2) });
  }

  assertDone(): void {
    if (this.position !== this.exchanges.length) throw new Error(`${this.exchanges.length - this.position} transcript exchanges were not used`);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

function clean(hex: string): string {
  return hex.replace(/\s+/gu, '').toLowerCase();
}

/** Hex of an ASCII string, for readable transcripts. */
export function asciiHex(text: string): string {
  return Buffer.from(text, 'ascii').toString('hex');
}
