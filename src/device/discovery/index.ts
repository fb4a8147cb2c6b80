/** Discovery: which keys are there (enumerateKeys) and which come and go (KeyWatcher). */
export { enumerateKeys, hidDescriptors, listHidKeys, listPcscKeys, listVirtualKeys, pcscDescriptor, virtualDescriptor } from './enumerate.js';
export type { EnumerateOptions, KeyDescriptor, KeyKind, SourceName } from './enumerate.js';
export { KeyWatcher } from './watcher.js';
export type { HidTrigger, KeyWatcherEvents, KeyWatcherOptions } from './watcher.js';
export { FIDO_USAGE_PAGE, KNOWN_KEYS, findKnownKey, udevRules } from './known-keys.js';
export type { KnownKey } from './known-keys.js';
