/** Independent HOTP arithmetic (node:crypto), for finding codes and secrets in traffic logs. */
import { createHmac } from 'node:crypto';

/**
 * The 4 bytes of RFC 4226 dynamic truncation, in hex, top bit cleared. The key may send that bit
 * set (the client masks it), so a search for these bytes in a log looks at the last 7 digits.
 */
export function truncatedHex(secret: Uint8Array, algorithm: 'sha1' | 'sha256' | 'sha512', counter: number): string {
  const message = Buffer.alloc(8);
  message.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac(algorithm, secret).update(message).digest();
  const offset = mac[mac.length - 1]! & 0x0f;
  return (mac.readUInt32BE(offset) & 0x7fffffff).toString(16).padStart(8, '0');
}

/** Every 8-byte run of `bytes`, in hex: a secret split across two HID reports is still caught. */
export function eightByteRuns(bytes: Uint8Array): string[] {
  if (bytes.length < 8) throw new Error('eightByteRuns needs at least 8 bytes');
  return Array.from({ length: bytes.length - 7 }, (_, i) => Buffer.from(bytes.subarray(i, i + 8)).toString('hex'));
}
