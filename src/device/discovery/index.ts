/** Discovery: which keys are there (enumerateKeys) and which come and go (KeyWatcher). */
export { enumerateInterfaces, enumerateKeys, hidInterfaces, listHidKeys, listPcscKeys, listVirtualKeys, pcscInterface, virtualInterface } from './enumerate.js';
export type { EnumerateOptions, KeyDescriptor, KeyInterface, KeyKind, SourceName } from './enumerate.js';
export { INTERFACE_NAMES, interfaceNameOf, keyOver, keyOverOnly, mergeInterfaces, preferredOrder } from './interfaces.js';
export type { InterfaceName, ReachPlatform } from './interfaces.js';
export { KeyWatcher } from './watcher.js';
export type { HidTrigger, KeyWatcherEvents, KeyWatcherOptions } from './watcher.js';
export { FIDO_USAGE_PAGE, KNOWN_KEYS, findKnownKey, udevRules } from './known-keys.js';
export type { KnownKey } from './known-keys.js';
