import type { KeyDescriptor, KeyInterface } from '../../src/device/discovery/enumerate.js';

/** A key reached over this one interface, as discovery lists a key found one way only. */
export function keyOverOne(key: KeyInterface): KeyDescriptor {
  return { ...key, interfaces: [key] };
}
