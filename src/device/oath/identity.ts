/**
 * Which physical key a SELECT answer comes from, whichever interface carried it: the Nitrokey 3
 * tells its serial (tag 8F, the first 4 bytes of its UUID) and, without a PIN, a salt; a YubiKey
 * tells its salt (tag 71), from which yubikit derives the OATH device id. The serial wins: it
 * survives a RESET, which makes a new salt.
 */
import { createHash } from 'node:crypto';
import { formatSerial } from '../management.js';
import { Tag } from './constants.js';
import { findTlv } from './tlv.js';
import type { Tlv } from './tlv.js';

/** yubikit's device id: Base64 of the first 16 bytes of SHA-256(salt), unpadded. */
export function oathDeviceId(salt: Uint8Array): string {
  return createHash('sha256').update(salt).digest().subarray(0, 16).toString('base64').replace(/=+$/u, '');
}

/**
 * "serial:<serial>" or "device-id:<id>", the same over HID and over CCID; undefined for an answer
 * that tells neither (then the key cannot be recognised on another interface).
 */
export function oathIdentity(selectTlvs: readonly Tlv[]): string | undefined {
  const serial = findTlv(selectTlvs, Tag.SERIAL);
  if (serial && serial.length > 0) return `serial:${formatSerial('nitrokey3', serial)}`;
  const salt = findTlv(selectTlvs, Tag.NAME);
  return salt && salt.length > 0 ? `device-id:${oathDeviceId(salt)}` : undefined;
}
