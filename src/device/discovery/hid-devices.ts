/**
 * HID discovery: every HID interface the OS lists, through node-hid (loaded on first use by
 * transport/node-hid-link.ts). Which of them are OATH keys is enumerate.ts's decision.
 */
import { KeytapError } from '../../errors.js';
import { loadNodeHid } from '../transport/node-hid-link.js';

/** What node-hid's enumeration reports for one HID interface. */
export interface HidDeviceInfo {
  vendorId: number;
  productId: number;
  path?: string | undefined;
  serialNumber?: string | undefined;
  manufacturer?: string | undefined;
  product?: string | undefined;
  interface: number;
  usagePage?: number | undefined;
  usage?: number | undefined;
}

/** Every HID interface the OS lists. */
export async function listHidDevices(): Promise<HidDeviceInfo[]> {
  const hid = await loadNodeHid();
  try {
    return await hid.devicesAsync();
  } catch (error) {
    throw new KeytapError('DEVICE_ERROR', 'Listing the HID devices failed.', { cause: error });
  }
}
