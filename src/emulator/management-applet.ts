/**
 * The Management application of the virtual YubiKey (docs/protocols.md §5.6): what ykman reads
 * first on any YubiKey, to learn its firmware and serial, and what keytap reads for the serial.
 * Read-only: it changes no mode or setting, and answers every other instruction 6D00.
 */
import { capabilitiesOf } from '../device/oath/dialect.js';
import { Sw } from '../device/oath/constants.js';
import { CAPABILITY_OATH, DeviceInfoTag, INS_READ_CONFIG } from '../device/management.js';
import { sw, tlv, withSw } from './oath-applet-common.js';
import type { Apdu } from './oath-applet-common.js';
import type { VirtualKeyStore } from './store.js';

const VERSION = capabilitiesOf('yubikey').version;
/** yubikit's FORM_FACTOR.USB_A_KEYCHAIN: the shape of a YubiKey 5 NFC. */
const FORM_FACTOR_USB_A_KEYCHAIN = 0x01;
/** The applications this key has, over USB and NFC alike: OATH only (no FIDO, PIV, OpenPGP, OTP). */
const CAPABILITIES = [CAPABILITY_OATH >> 8, CAPABILITY_OATH & 0xff];

export class ManagementApplet {
  constructor(private readonly store: VirtualKeyStore) {}

  /** The SELECT answer: the firmware version as text, which yubikit parses with Version.from_string. */
  select(): Uint8Array {
    return withSw(Buffer.from(VERSION.join('.'), 'latin1'), Sw.OK);
  }

  handle(apdu: Apdu): Uint8Array {
    if (apdu.cla !== 0x00) return sw(Sw.CLA_NOT_SUPPORTED);
    if (apdu.ins !== INS_READ_CONFIG) return sw(Sw.INS_NOT_SUPPORTED);
    if (apdu.p2 !== 0x00) return sw(Sw.INCORRECT_P1P2);
    // Everything fits in page 0, and MORE_DATA is never set, so a later page is empty.
    const page =
      apdu.p1 === 0
        ? Buffer.concat([
            tlv(DeviceInfoTag.USB_SUPPORTED, CAPABILITIES),
            tlv(DeviceInfoTag.SERIAL, this.store.serialBytes),
            tlv(DeviceInfoTag.USB_ENABLED, CAPABILITIES),
            tlv(DeviceInfoTag.FORM_FACTOR, [FORM_FACTOR_USB_A_KEYCHAIN]),
            tlv(DeviceInfoTag.VERSION, VERSION),
            tlv(DeviceInfoTag.CONFIG_LOCK, [0x00]),
            tlv(DeviceInfoTag.NFC_SUPPORTED, CAPABILITIES),
            tlv(DeviceInfoTag.NFC_ENABLED, CAPABILITIES),
          ])
        : Buffer.alloc(0);
    return withSw(Buffer.concat([Buffer.of(page.length), page]), Sw.OK);
  }
}
