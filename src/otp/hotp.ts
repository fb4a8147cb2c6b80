/**
 * HOTP (RFC 4226) and TOTP (RFC 6238) computation, and the truncation rules a key's answer
 * needs on the host (docs/protocols.md §1.10). Pure: no I/O.
 */
import { createHmac } from 'node:crypto';
import type { HashAlgorithm } from './credential.js';
import { DEFAULT_PERIOD } from './credential.js';

/** Node's crypto name of each hash (the device layer's PUT key hashing uses it too). */
export const NODE_HASH: Readonly<Record<HashAlgorithm, string>> = { SHA1: 'sha1', SHA256: 'sha256', SHA512: 'sha512' };

/** The 8-byte big-endian moving factor. BigInt so that counters ≥ 2^32 are exact. */
export function counterBytes(counter: bigint | number): Buffer {
  const value = BigInt(counter);
  if (value < 0n || value > 0xffffffffffffffffn) throw new RangeError('The counter must fit in 64 bits.');
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64BE(value);
  return bytes;
}

export function hmac(algorithm: HashAlgorithm, secret: Uint8Array, message: Uint8Array): Buffer {
  return createHmac(NODE_HASH[algorithm], secret).update(message).digest();
}

/** RFC 4226 dynamic truncation of a full HMAC, top bit masked: a 31-bit value. */
export function dynamicTruncate(mac: Uint8Array): number {
  const offset = (mac[mac.length - 1] ?? 0) & 0x0f;
  if (offset + 4 > mac.length) throw new RangeError('The HMAC is too short to truncate.');
  return maskTruncated(mac.subarray(offset, offset + 4));
}

/**
 * The 4 bytes a key returns for a truncated CALCULATE, as a 31-bit value. The top bit is masked
 * here, always: a YubiKey leaves it set, a Nitrokey 3 clears it.
 */
export function maskTruncated(fourBytes: Uint8Array): number {
  if (fourBytes.length !== 4) throw new RangeError('A truncated response has exactly 4 bytes.');
  return (((fourBytes[0]! & 0x7f) << 24) | (fourBytes[1]! << 16) | (fourBytes[2]! << 8) | fourBytes[3]!) >>> 0;
}

/** The code a user types: the value mod 10^digits, left-padded with zeros. */
export function formatCode(value: number, digits: number): string {
  return (value % 10 ** digits).toString().padStart(digits, '0');
}

export function hotp(secret: Uint8Array, counter: bigint | number, digits = 6, algorithm: HashAlgorithm = 'SHA1'): string {
  return formatCode(dynamicTruncate(hmac(algorithm, secret, counterBytes(counter))), digits);
}

/** The TOTP time step number for a time in seconds since the epoch. */
export function timeStep(timeSeconds: number, period = DEFAULT_PERIOD): number {
  return Math.floor(timeSeconds / period);
}

/** The validity window of the code for a time: [validFrom, validTo) in seconds since the epoch. */
export function validityWindow(timeSeconds: number, period = DEFAULT_PERIOD): { validFrom: number; validTo: number } {
  const validFrom = timeStep(timeSeconds, period) * period;
  return { validFrom, validTo: validFrom + period };
}

export function totp(
  secret: Uint8Array,
  timeSeconds: number,
  period = DEFAULT_PERIOD,
  digits = 6,
  algorithm: HashAlgorithm = 'SHA1',
): string {
  return hotp(secret, timeStep(timeSeconds, period), digits, algorithm);
}
