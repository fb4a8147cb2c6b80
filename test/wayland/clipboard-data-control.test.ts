// keytap's own Wayland clipboard owner (src/desktop/clipboard/wayland-data-control.ts) against a
// real compositor (sway 1.7: zwlr_data_control_manager_v1), read back by wl-paste, a peer. The
// adapter runs in this (root) process and connects to the session user's socket, as the tray does
// in its own session.
import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClipboardGuard } from '../../src/desktop/clipboard/index.js';
import { waylandClipboard } from '../../src/desktop/clipboard/command.js';
import type { CommandRunner } from '../../src/desktop/clipboard/run.js';
import { SENSITIVE_MIME_TYPE, WaylandDataControlClipboard, findDataControl } from '../../src/desktop/clipboard/wayland-data-control.js';
import { missingTool } from '../platform/desktop.js';
import { WAYLAND_TOOLS, WaylandSession } from '../support/wayland-session.js';

const missing = process.platform === 'linux' ? missingTool(...WAYLAND_TOOLS) : 'Linux';
if (missing) console.warn(`skipping the Wayland data-control test: ${missing} is missing (see .ci/run)`);

const openFds = (): number => readdirSync('/proc/self/fd').length;

describe.skipIf(missing !== undefined)('the data-control clipboard in sway', () => {
  const session = new WaylandSession();
  let clipboard: WaylandDataControlClipboard;

  beforeAll(async () => {
    await session.start();
    const asSessionUser: CommandRunner = (command, args, options = {}) => session.run(command, args, { input: options.input, detaches: options.detaches });
    clipboard = new WaylandDataControlClipboard(await findDataControl(session.env), session.env, waylandClipboard(asSessionUser));
  });
  afterAll(async () => {
    await clipboard?.close();
    await session.stop();
  });

  it('finds wlroots data-control in sway', async () => {
    expect(await findDataControl(session.env)).toBe('zwlr_data_control_manager_v1');
    expect(clipboard.name).toBe('wlr-data-control (in-process)');
    expect(clipboard.marksSensitive).toBe(true);
  });

  it('offers the text and the password marker, which wl-paste reads back', async () => {
    await clipboard.write('123456', { sensitive: true });
    const types = await session.clipboardTypes();
    expect(types).toEqual(expect.arrayContaining(['text/plain', 'text/plain;charset=utf-8', 'UTF8_STRING', 'STRING', 'TEXT', SENSITIVE_MIME_TYPE]));
    expect(await session.paste()).toBe('123456');
    expect(await session.paste(SENSITIVE_MIME_TYPE)).toBe('secret');
    expect(await session.paste('UTF8_STRING')).toBe('123456');
    expect(await clipboard.read()).toBe('123456');
  });

  it('offers no marker for a copy that is not sensitive', async () => {
    await clipboard.write('not a secret ✓', { sensitive: false });
    expect(await session.clipboardTypes()).not.toContain(SENSITIVE_MIME_TYPE);
    expect(await session.paste()).toBe('not a secret ✓');
  });

  it('clears the clipboard while it still owns it', async () => {
    await clipboard.write('654321', { sensitive: true });
    expect(clipboard.connected).toBe(true);
    await clipboard.clear();
    expect(await session.paste()).toBe('');
    expect(await session.clipboardTypes()).toEqual([]);
    // An idle tray holds no Wayland connection.
    expect(clipboard.connected).toBe(false);
  });

  it('lets go when another program copies, and its clear leaves that copy alone', async () => {
    await clipboard.write('111111', { sensitive: true });
    await session.copy('someone else');
    await session.waitFor(async () => (await session.paste()) === 'someone else', "the other program's copy");
    // The source heard `cancelled`: keytap owns nothing, so it hangs up.
    await session.waitFor(() => !clipboard.connected, 'the connection closed after cancelled');
    expect(await session.paste()).toBe('someone else');
    await clipboard.write('222222', { sensitive: true });
    expect(await session.paste()).toBe('222222');
  });

  it("serves the clipboard guard: a code still there is cleared, someone else's copy stays", async () => {
    const guard = new ClipboardGuard(clipboard, { clearAfterMs: 100 });
    await guard.copy('333333');
    expect(await session.paste()).toBe('333333');
    await session.waitFor(async () => (await session.paste()) === '', 'the clear of the code');
    await guard.copy('444444');
    await session.copy('copied since');
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(await session.paste()).toBe('copied since');
  });

  it('leaves no descriptor behind after twenty copies and clears', async () => {
    await clipboard.write('warm-up', { sensitive: true });
    await clipboard.clear();
    const before = openFds();
    for (let i = 0; i < 20; i++) {
      await clipboard.write(`${100000 + i}`, { sensitive: true });
      expect(await session.paste()).toBe(`${100000 + i}`);
      await clipboard.clear();
    }
    expect(openFds()).toBe(before);
  });
});
