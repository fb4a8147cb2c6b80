/**
 * The real CTAPHID client against the real virtual key, in process: the 64-byte report boundary
 * is the only thing between them, exactly where node-hid sits for a physical key.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CtapHidApduTransport, CtapHidChannel } from '../../src/device/transport/ctaphid.js';
import { CtapHidCommand } from '../../src/device/transport/ctaphid-frames.js';
import { TouchButton } from '../../src/emulator/touch.js';
import type { Dialect } from '../../src/device/oath/dialect.js';
import { VirtualKey } from '../../src/emulator/virtual-key.js';
import { INS_TOUCH, OATH_SELECT, StubApplet } from '../emulator/helpers.js';
import { rejection } from '../support/rejection.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keytap-ctaphid-vk-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function stubKey(dialect: Dialect): VirtualKey {
  return new VirtualKey({ dialect, applet: new StubApplet(), button: new TouchButton({ mode: 'manual' }, 15_000) });
}

const TOUCH_APDU = Uint8Array.of(0x00, INS_TOUCH, 0x00, 0x01);

describe.each(['yubikey', 'nitrokey3'] as const)('CTAPHID client ↔ VirtualKey (%s)', (dialect) => {
  it('opens a channel and echoes PINGs of 0, 57, 58, 1000 and 7609 bytes (as far as the key takes them)', async () => {
    const key = await VirtualKey.open({ file: join(dir, `${dialect}.json`), dialect });
    try {
      const channel = await CtapHidChannel.open(key.openLink());
      expect(channel.info.protocolVersion).toBe(2);
      for (const size of [0, 57, 58, 1000, 3072, 7609]) {
        const data = Uint8Array.from({ length: size }, (_, i) => (i * 31) & 0xff);
        if (dialect === 'nitrokey3' && size > 3072) {
          // usbd-ctaphid takes at most 3072 bytes (docs/protocols.md §2.2)
          const error = await rejection(channel.ping(data));
          expect(error.message).toContain('INVALID_LEN');
        } else {
          expect(await channel.ping(data)).toEqual(data);
        }
      }
      await channel.wink();
      await channel.close();
    } finally {
      await key.close();
    }
  });

  it('SELECTs the OATH applet over vendor command 0x70', async () => {
    const key = await VirtualKey.open({ file: join(dir, `${dialect}-select.json`), dialect });
    try {
      const transport = await CtapHidApduTransport.open(key.openLink());
      const response = await transport.transmit(OATH_SELECT);
      expect(response.sw).toBe(0x9000);
      expect(response.data[0]).toBe(0x79); // version tag first
      await transport.close();
    } finally {
      await key.close();
    }
  });

  it('waits for a touch, telling the caller where the key says so', async () => {
    const key = stubKey(dialect);
    try {
      const transport = await CtapHidApduTransport.open(key.openLink());
      let touches = 0;
      const started = Date.now();
      setTimeout(() => void key.touch(), 300);
      const response = await transport.transmit(TOUCH_APDU, { onTouchNeeded: () => touches++ });
      expect(response.sw).toBe(0x9000);
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      // YubiKey-like keys send KEEPALIVE UPNEEDED; the Nitrokey 3 sends nothing for 0x70 (§2.10).
      expect(touches).toBe(dialect === 'yubikey' ? 1 : 0);
    } finally {
      await key.close();
    }
  });

  it('cancels a touch wait with CTAPHID CANCEL and carries on with the next request', async () => {
    const key = stubKey(dialect);
    try {
      const transport = await CtapHidApduTransport.open(key.openLink());
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 100);
      expect((await rejection(transport.transmit(TOUCH_APDU, { signal: controller.signal }))).code).toBe('CANCELLED');
      const response = await transport.transmit(OATH_SELECT);
      expect(response.sw).toBe(0x9000);
    } finally {
      await key.close();
    }
  });

  it('says KEY_REMOVED when the key is unplugged during a touch wait', async () => {
    const key = stubKey(dialect);
    const transport = await CtapHidApduTransport.open(key.openLink());
    setTimeout(() => void key.close(), 100);
    const error = await rejection(transport.transmit(TOUCH_APDU));
    expect(error.code).toBe('KEY_REMOVED');
    expect(error.message).toBe('The key was removed during an OATH request.');
  });

  it('says BUSY to a second program while the first one waits for a touch', async () => {
    const key = stubKey(dialect);
    try {
      const first = await CtapHidApduTransport.open(key.openLink());
      const second = await CtapHidApduTransport.open(key.openLink());
      const pending = first.transmit(TOUCH_APDU);
      await new Promise((resolve) => setTimeout(resolve, 50));
      const error = await rejection(second.channel.call(CtapHidCommand.VENDOR_SECRETS, OATH_SELECT, { timeoutMs: 400 }));
      expect(error.code).toBe('BUSY');
      await key.touch();
      expect((await pending).sw).toBe(0x9000);
      // and once the key is free, the second program gets through
      expect((await second.transmit(OATH_SELECT)).sw).toBe(0x9000);
    } finally {
      await key.close();
    }
  });
});
