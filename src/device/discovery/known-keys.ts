/**
 * The keys keytap knows by USB id, and what each can do. Discovery lists a HID device of this
 * table only when it has `oathOverHid` or dialect 'feitian': other FIDO keys answer CTAPHID too, but
 * have no OATH applet behind it, and a tray entry that can never show a code helps nobody. A FIDO
 * device that is not in the table but of Nitrokey's or Feitian's vendor id is asked whether it
 * answers OATH over 0x70 or the Feitian HOTP application (`identificationQuestions`, enumerate.ts
 * `unknownFidoKeys`), and listed when it does.
 *
 * Feitian-made HOTP keys (Hypersecu HyperFIDO, docs/protocols.md §4.1) carry no OATH applet; they
 * are listed for `keytap keys`, `program` and `reset`, which speak their programming protocol.
 *
 * YubiKeys keep their OATH applet on the CCID (smart card) interface only, so they are listed here
 * for the PC/SC path (`oathOverCcid`) and skipped by HID discovery.
 */
import type { KeyDialect } from '../key-dialect.js';

export interface KnownKey {
  vendorId: number;
  productId: number;
  /** What the user sees in the tray and in `keytap list`. */
  name: string;
  /** OATH over the FIDO HID interface (CTAPHID vendor command 0x70). */
  oathOverHid: boolean;
  /** OATH over CCID / PC/SC. */
  oathOverCcid: boolean;
  /** 'feitian': the Feitian HOTP programming protocol over U2FHID MSG, not OATH. */
  dialect: KeyDialect;
}

export const KNOWN_KEYS: readonly KnownKey[] = [
  // docs/protocols.md §2.1: every NK3 variant (3A/3C, NFC, mini) has this firmware PID.
  { vendorId: 0x20a0, productId: 0x42b2, name: 'Nitrokey 3', oathOverHid: true, oathOverCcid: true, dialect: 'nitrokey3' },
  // YubiKey 4/5 USB interface combinations that include CCID (yubikit `PID`).
  { vendorId: 0x1050, productId: 0x0404, name: 'YubiKey', oathOverHid: false, oathOverCcid: true, dialect: 'yubikey' },
  { vendorId: 0x1050, productId: 0x0405, name: 'YubiKey', oathOverHid: false, oathOverCcid: true, dialect: 'yubikey' },
  { vendorId: 0x1050, productId: 0x0406, name: 'YubiKey', oathOverHid: false, oathOverCcid: true, dialect: 'yubikey' },
  { vendorId: 0x1050, productId: 0x0407, name: 'YubiKey', oathOverHid: false, oathOverCcid: true, dialect: 'yubikey' },
  // docs/protocols.md §4.1: hyperhotp matches 2CCF:0854 only ("not sure whether this list is
  // exhaustive"). 096E (Feitian's own VID) is defined there but not matched, so a 096E device is
  // no known key: it is listed only once it answers the Feitian SELECT and CHECK (identificationQuestions),
  // and gets no udev rule of its own until a real key shows that id.
  { vendorId: 0x2ccf, productId: 0x0854, name: 'HyperFIDO HOTP key', oathOverHid: false, oathOverCcid: false, dialect: 'feitian' },
];

const NITROKEY_VENDOR_ID = 0x20a0;
/** Feitian Technologies and Hypersecu (a Feitian OEM), docs/protocols.md §4.1. */
const FEITIAN_VENDOR_IDS: readonly number[] = [0x096e, 0x2ccf];

/**
 * What discovery, which runs by itself at every command and rescan, may ask a FIDO device that is
 * not in KNOWN_KEYS. CTAPHID commands 0x40-0x7F are each vendor's own: 0x70 is the Nitrokey Secrets
 * App on Nitrokey firmware but CTAPHID_PROBE on Solo 1 debug builds (pid.codes 1209), so it goes to
 * Nitrokey's vendor id only; the Feitian SELECT and CHECK (proprietary APDUs over MSG) only to
 * Feitian's and Hypersecu's. Other vendors' devices are not opened at all.
 * `keytap doctor --probe`, which the user runs, asks every device everything (README).
 */
export function identificationQuestions(vendorId: number): { oathOverVendorCommand: boolean; feitianSelect: boolean } | undefined {
  const oathOverVendorCommand = vendorId === NITROKEY_VENDOR_ID;
  const feitianSelect = FEITIAN_VENDOR_IDS.includes(vendorId);
  return oathOverVendorCommand || feitianSelect ? { oathOverVendorCommand, feitianSelect } : undefined;
}

/** Keys discovery lists over their FIDO HID interface: OATH over CTAPHID 0x70, or the Feitian HOTP protocol over MSG. */
export function reachableOverHid(key: KnownKey): boolean {
  return key.oathOverHid || key.dialect === 'feitian';
}

/** The FIDO HID usage page (docs/protocols.md §3.1). */
export const FIDO_USAGE_PAGE = 0xf1d0;

export function findKnownKey(vendorId: number, productId: number): KnownKey | undefined {
  return KNOWN_KEYS.find((key) => key.vendorId === vendorId && key.productId === productId);
}

function hex4(n: number): string {
  return n.toString(16).padStart(4, '0');
}

/** Where a user without the keytap package puts the rules (`keytap doctor --udev-rules` prints them). */
export const UDEV_RULES_PATH = '/etc/udev/rules.d/70-keytap.rules';
/**
 * Where the keytap Debian package installs them (build/deb.mjs). The same file name as
 * UDEV_RULES_PATH on purpose: udev lets a file in /etc override the packaged one of that name.
 */
export const PACKAGED_UDEV_RULES_PATH = '/usr/lib/udev/rules.d/70-keytap.rules';
// eslint-disable-next-line no-restricted-syntax -- udevadm's options, not keytap's
export const UDEV_RELOAD_COMMAND = 'sudo udevadm control --reload-rules && sudo udevadm trigger';

/**
 * The rules proper: the logged-in user may open the FIDO HID interface of the keys keytap reads
 * over HID. `uaccess` (applied by 73-seat-late.rules, hence a number below 73) gives the seat's
 * user access without a group. systemd ≥ 244 already does this for any FIDO key through
 * 60-fido-id.rules (ID_SECURITY_TOKEN); the last line repeats it for systems where the tag is set
 * but no rule acts on it.
 */
function udevRuleLines(): string[] {
  const lines: string[] = [];
  for (const key of KNOWN_KEYS.filter(reachableOverHid)) {
    lines.push(`# ${key.name}`);
    lines.push(
      `KERNEL=="hidraw*", SUBSYSTEM=="hidraw", ATTRS{idVendor}=="${hex4(key.vendorId)}", ATTRS{idProduct}=="${hex4(key.productId)}", TAG+="uaccess"`,
    );
  }
  lines.push('# Any FIDO key that systemd-udev recognised (60-fido-id.rules sets ID_SECURITY_TOKEN)');
  lines.push('KERNEL=="hidraw*", SUBSYSTEM=="hidraw", ENV{ID_SECURITY_TOKEN}=="1", TAG+="uaccess"');
  return lines;
}

/** The rules for a user to install by hand, saying where and how. */
export function udevRules(): string {
  const lines = [
    '# keytap: let the logged-in user talk to USB security keys over HID.',
    `# Save as ${UDEV_RULES_PATH}, then run: ${UDEV_RELOAD_COMMAND}`,
    '# and plug the key in again.',
    ...udevRuleLines(),
  ];
  return `${lines.join('\n')}\n`;
}

/** The same rules as the keytap package installs them at PACKAGED_UDEV_RULES_PATH. */
export function packagedUdevRules(): string {
  const lines = [
    '# keytap: let the logged-in user talk to USB security keys over HID.',
    `# Installed by the keytap package. To change it, copy it to ${UDEV_RULES_PATH}`,
    '# and edit the copy: a file of the same name there takes precedence over this one.',
    ...udevRuleLines(),
  ];
  return `${lines.join('\n')}\n`;
}

/**
 * Linux: the udev rule, as a hint. The same words whether or not the package is installed (the
 * hint is built before anything fails), so it covers both.
 */
export function linuxPermissionHint(): string {
  return (
    `If keytap came as a Debian package, its udev rule is ${PACKAGED_UDEV_RULES_PATH} already: plug the key in again, at the machine's own desktop session (the rule gives the key to the user logged in there, not over SSH).\n` +
    `Otherwise install a udev rule that gives you access to the key. Put these lines in ${UDEV_RULES_PATH}:\n${udevRules()}Then run: ${UDEV_RELOAD_COMMAND}\nand plug the key in again.`
  );
}
