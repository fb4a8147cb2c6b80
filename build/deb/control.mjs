// The facts of the keytap Debian package that are not computed at build time: its control fields
// and the native addons whose shared-library needs become its dependencies.

export const PACKAGE = 'keytap';
/** The executable is linux-x64 (build/deb.mjs checks its ELF header). */
export const ARCHITECTURE = 'amd64';
export const SECTION = 'utils';
export const PRIORITY = 'optional';
/**
 * Used when package.json has no "author". A placeholder in the reserved .invalid domain, so
 * nobody's address is made up: set "author" in package.json to give the package a real one.
 */
export const PLACEHOLDER_MAINTAINER = 'keytap maintainers <maintainers@keytap.invalid>';

export const SYNOPSIS = 'OATH codes from USB security keys, from the tray or the command line';
export const DESCRIPTION = `keytap reads the TOTP and HOTP one-time codes that USB security keys such as
the Nitrokey 3 and the YubiKey 5 keep, and programs keys with new accounts.

It is three things in one program: a small tray utility that copies a code
to the clipboard when you click an account and touch the key; a command line
(keytap code, keytap list, keytap add and more) for scripts and desktop
shortcuts; and a programmer that writes OATH tokens to a batch of keys,
verifies them, keeps a ledger of their seeds and exports the seed files
identity providers import (Microsoft Entra ID, PSKC, privacyIDEA and others).

A Nitrokey 3 is read over its FIDO HID interface (the package's udev rule
gives the user at the machine's desktop access to it), a YubiKey over PC/SC
through pcscd.`;

/**
 * Fixed relations. libpcsclite1: the PC/SC binding opens libpcsclite.so.1 at run time (dlopen),
 * so no ELF header names it. pcscd: the service that binding talks to, needed for YubiKeys only.
 * xsel or wl-clipboard: the clipboard for `keytap code` run without the tray.
 */
export const DEPENDS = ['libpcsclite1'];
export const RECOMMENDS = ['pcscd'];
export const SUGGESTS = ['xsel | wl-clipboard'];

/**
 * The Linux x64 native addons the executable carries (as assets, written to its cache folder on
 * first run), relative to the repository root. dpkg-shlibdeps reads the shared libraries each
 * one links, as it does for the executable itself: those of an addon keytap cannot work without
 * become Depends, those of an optional one Recommends.
 */
export const NATIVE_ADDONS = [
  // node-hid's hidraw backend (the one node-hid loads on Linux): every key read over HID.
  { file: 'node_modules/node-hid/prebuilds/HID_hidraw-linux-x64/node-napi-v4.node', field: 'Depends' },
  // koffi: the PC/SC binding calls libpcsclite through it.
  { file: 'node_modules/@koromix/koffi-linux-x64/linux_x64/koffi.node', field: 'Depends' },
  // @napi-rs/keyring: remembering access keys in the Secret Service (it speaks D-Bus itself: libc only).
  { file: 'node_modules/@napi-rs/keyring-linux-x64-gnu/keyring.linux-x64-gnu.node', field: 'Depends' },
  // uiohook-napi: the global shortcut on X11; keytap says so and runs on without it.
  { file: 'node_modules/uiohook-napi/prebuilds/linux-x64/uiohook-napi.node', field: 'Recommends' },
];
