/**
 * Yubico's Management application (docs/protocols.md §5.6): where a YubiKey tells its serial over
 * CCID, as ykman reads it, and how keytap writes a key's serial. Shared by the client session and
 * the virtual YubiKey's card, so the two cannot drift apart.
 */
import type { Dialect } from './oath/dialect.js';
import { parseTlvs } from './oath/tlv.js';
import type { Tlv } from './oath/tlv.js';

export const MANAGEMENT_AID = Uint8Array.of(0xa0, 0x00, 0x00, 0x05, 0x27, 0x47, 0x11, 0x17);

/** READ CONFIG: P1 is the page, the answer one length byte and the DEVICE INFO TLVs of that page. */
export const INS_READ_CONFIG = 0x1d;

/** DEVICE INFO tags (yubikit/management.py). */
export const DeviceInfoTag = {
  USB_SUPPORTED: 0x01,
  SERIAL: 0x02,
  USB_ENABLED: 0x03,
  FORM_FACTOR: 0x04,
  VERSION: 0x05,
  CONFIG_LOCK: 0x0a,
  NFC_SUPPORTED: 0x0d,
  NFC_ENABLED: 0x0e,
  MORE_DATA: 0x10,
} as const;

/** yubikit's CAPABILITY.OATH bit in the supported/enabled masks. */
export const CAPABILITY_OATH = 0x0020;

/** The TLVs of one DEVICE INFO page; undefined when the length byte does not match (ykman: "Invalid length"). */
export function parseDeviceInfo(answer: Uint8Array): Tlv[] | undefined {
  if (answer.length === 0 || answer[0] !== answer.length - 1) return undefined;
  return parseTlvs(answer.subarray(1));
}

/** The serial in DEVICE INFO (a big-endian integer; 0 or absent means none, as yubikit reads it). */
export function serialOfDeviceInfo(tlvs: readonly Tlv[]): Uint8Array | undefined {
  const value = tlvs.find((t) => t.tag === DeviceInfoTag.SERIAL)?.value;
  return value && value.length > 0 && value.length <= 4 && value.some((b) => b !== 0) ? value : undefined;
}

/**
 * A serial as keytap shows it, everywhere (menu, `keys`, `--device`, the virtual key's
 * announcement): decimal for a YubiKey, as ykman and the case of the key print it; upper-case hex
 * for the Nitrokey 3's four bytes (SELECT tag 8F), which are the start of its UUID and no number.
 */
export function formatSerial(dialect: Dialect, bytes: Uint8Array): string {
  if (dialect === 'nitrokey3') return Buffer.from(bytes).toString('hex').toUpperCase();
  return String(bytes.reduce((n, b) => n * 256 + b, 0));
}
