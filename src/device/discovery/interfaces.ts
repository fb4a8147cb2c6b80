/**
 * One key, however many ways lead to it. A Nitrokey 3 offers its Secrets App over its FIDO HID
 * interface and over its smart-card interface (CCID); a virtual key can be served over its socket
 * and as a vpcd card at once. Each source lists the interfaces it reaches (KeyInterface); this
 * module merges the interfaces of one physical key, recognised by what the key itself says in its
 * SELECT answer (oath/identity.ts), into one KeyDescriptor that lists them in the order this
 * platform prefers and opens the first that opens.
 *
 * The order: on Windows CCID first, since only a process run as Administrator may open a FIDO HID
 * device there (Windows 10 1903 and later) while PC/SC needs no elevation; elsewhere HID first
 * (a virtual key's socket counts as HID: it carries CTAPHID), whose keepalives say when the key
 * waits for a touch.
 */
import { KeytapError, isKeytapError } from '../../errors.js';
import type { ApduTransport } from '../transport/types.js';
import type { KeyDescriptor, KeyInterface } from './enumerate.js';

/** How an interface reaches its key, in the words a user sees: FIDO HID (CTAPHID), or the smart-card interface through PC/SC. */
export type InterfaceName = 'hid' | 'ccid';

export const INTERFACE_NAMES: readonly InterfaceName[] = ['hid', 'ccid'];

export function interfaceNameOf(key: Pick<KeyInterface, 'kind'>): InterfaceName {
  return key.kind === 'pcsc' ? 'ccid' : 'hid';
}

/** Changes when the same interface id comes back as another instance (a virtual key restarted, a card put back). */
export function interfaceFingerprint(key: KeyInterface): string {
  return [key.kind, key.id, key.path, key.virtual?.pid ?? '', key.virtual?.startedAt ?? ''].join('\u0000');
}

/** What reaching a key depends on of the platform; the tests give fakes. */
export interface ReachPlatform {
  platform: NodeJS.Platform;
  /** Windows: whether this process runs elevated (as Administrator). */
  isElevated(): Promise<boolean>;
}

/** The interfaces in the order `platform` tries them (a stable sort: a source's own order stays). */
export function preferredOrder<T extends Pick<KeyInterface, 'kind'>>(interfaces: readonly T[], platform: NodeJS.Platform): T[] {
  const rank = (key: T): number => (interfaceNameOf(key) === (platform === 'win32' ? 'ccid' : 'hid') ? 0 : 1);
  return [...interfaces].sort((a, b) => rank(a) - rank(b));
}

/**
 * The keys behind `interfaces`. Interfaces with the same identity become one key when they are
 * one HID and one CCID interface; anything else stays a key of its own (two HID interfaces that
 * tell the same identity are two keys holding a copy of one state, as two virtual keys started
 * from copies of one file do).
 */
export function mergeInterfaces(interfaces: readonly KeyInterface[], identities: ReadonlyMap<KeyInterface, string>, reach: ReachPlatform): KeyDescriptor[] {
  const groups = new Map<string, KeyInterface[]>();
  for (const key of interfaces) {
    const identity = identities.get(key);
    if (identity !== undefined) groups.set(identity, [...(groups.get(identity) ?? []), key]);
  }
  const merged = new Map<KeyInterface, KeyDescriptor>();
  for (const [identity, group] of groups) {
    const hid = group.filter((k) => interfaceNameOf(k) === 'hid');
    const ccid = group.filter((k) => interfaceNameOf(k) === 'ccid');
    if (hid.length !== 1 || ccid.length !== 1) continue;
    const key = keyOver([hid[0]!, ccid[0]!], reach, identity);
    merged.set(hid[0]!, key);
    merged.set(ccid[0]!, key);
  }
  const keys: KeyDescriptor[] = [];
  for (const key of interfaces) {
    const mergedKey = merged.get(key);
    if (mergedKey === undefined) keys.push(keyOver([key], reach, identities.get(key)));
    else if (!keys.includes(mergedKey)) keys.push(mergedKey);
  }
  return keys;
}

/**
 * The key reached over `interfaces` (its HID interface first where it has one, as given by
 * mergeInterfaces): its id, kind and path are those of the interface tried first; its name,
 * USB ids and announced serial are the HID side's, which knows the product ("Nitrokey 3") where
 * the CCID side knows only a reader's name.
 */
export function keyOver(interfaces: readonly KeyInterface[], reach: ReachPlatform, identity?: string): KeyDescriptor {
  const ordered = preferredOrder(interfaces, reach.platform);
  const first = ordered[0]!;
  const described = interfaces.find((k) => interfaceNameOf(k) === 'hid') ?? first;
  return {
    id: first.id,
    kind: first.kind,
    path: first.path,
    name: described.name,
    vendorId: described.vendorId,
    productId: described.productId,
    usbSerial: described.usbSerial,
    dialect: described.dialect ?? first.dialect,
    serial: interfaces.find((k) => k.serial !== undefined)?.serial,
    virtual: interfaces.find((k) => k.virtual !== undefined)?.virtual,
    identity,
    interfaces: ordered,
    open: (signal?: AbortSignal) => openFirstReachable(ordered, described.name, reach, signal),
  };
}

/** The same key, reached only over `name`; undefined when it has no such interface now. */
export function keyOverOnly(key: KeyDescriptor, name: InterfaceName, reach: ReachPlatform): KeyDescriptor | undefined {
  const interfaces = key.interfaces.filter((k) => interfaceNameOf(k) === name);
  if (interfaces.length === 0) return undefined;
  return { ...keyOver(interfaces, reach, key.identity), id: key.id, name: key.name, serial: key.serial };
}

/**
 * Opens the first interface that opens. A cancel ends the attempt at once. When none opens, the
 * error of the first, unless Windows refused the HID interface to a process not run as
 * Administrator: then that, with both ways out (elevation, or the Smart Card service for CCID).
 */
async function openFirstReachable(interfaces: readonly KeyInterface[], keyName: string, reach: ReachPlatform, signal: AbortSignal | undefined): Promise<ApduTransport> {
  const failures: { key: KeyInterface; error: unknown }[] = [];
  for (const key of interfaces) {
    try {
      return await key.open(signal);
    } catch (error) {
      if (signal?.aborted || isKeytapError(error, 'CANCELLED')) throw error;
      failures.push({ key, error });
    }
  }
  const deniedHid = failures.find(({ key, error }) => interfaceNameOf(key) === 'hid' && isKeytapError(error, 'PERMISSION_DENIED'));
  if (reach.platform === 'win32' && deniedHid && !(await reach.isElevated().catch(() => false))) {
    const hasCcid = interfaces.some((k) => interfaceNameOf(k) === 'ccid');
    // A Feitian/HyperFIDO HOTP key speaks only over HID; a Nitrokey 3 has a CCID interface too.
    const smartCard = hasCcid || deniedHid.key.dialect !== 'feitian';
    throw new KeytapError(
      'PERMISSION_DENIED',
      hasCcid
        ? `${keyName} cannot be reached: its smart-card interface (CCID) did not open, and Windows lets only programs run as Administrator open its FIDO HID interface.`
        : `${keyName} cannot be reached: Windows lets only programs run as Administrator open its FIDO HID interface${smartCard ? ', and the smart-card service lists no CCID interface of it' : ''}.`,
      {
        hint: smartCard ? 'Run keytap as Administrator, or start the Smart Card service (SCardSvr) so that keytap reaches the key over CCID.' : 'Run keytap as Administrator.',
        detail: { kind: 'hid-needs-elevation', keyName, smartCard },
        cause: deniedHid.error,
      },
    );
  }
  throw failures[0]!.error;
}
