// The Wayland test desktop itself (test/support/wayland-session.ts): sway starts headless as the
// session's user, wl-clipboard works against it, and the tray host, pointer and notifications are there.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missingTool } from '../platform/desktop.js';
import { WAYLAND_TOOLS, WaylandSession } from '../support/wayland-session.js';

const missing = process.platform === 'linux' ? missingTool(...WAYLAND_TOOLS, 'mako', 'wayvnc', 'grim') : 'Linux';
if (missing) console.warn(`skipping the Wayland session test: ${missing} is missing (see .ci/run)`);

describe.skipIf(missing !== undefined)('the Wayland test session', () => {
  const session = new WaylandSession({ bar: true });

  beforeAll(async () => {
    await session.start();
  });
  afterAll(async () => {
    await session.stop();
  });

  it('runs sway as a user that is not root, with its own runtime folder', async () => {
    const pids = session.sessionProcesses();
    expect(pids.length).toBeGreaterThan(0);
    const version = await session.swaymsg('-t', 'get_version');
    expect(version.code).toBe(0);
    expect(JSON.parse(version.stdout)).toHaveProperty('human_readable');
    expect(session.user.uid).not.toBe(0);
  });

  it('copies and pastes through wl-clipboard', async () => {
    await session.copy('hello wayland');
    await session.waitFor(async () => (await session.paste()) === 'hello wayland', 'the copy');
    // wl-copy 2.1 offers every text alias for a text type, and nothing else.
    expect(await session.clipboardTypes()).toEqual(expect.arrayContaining(['text/plain', 'text/plain;charset=utf-8', 'UTF8_STRING']));
    expect(await session.clipboardTypes()).not.toContain('x-kde-passwordManagerHint');
  });

  it('gets a pointer and keyboard from wayvnc, and notifications from mako', async () => {
    const input = await session.startInput();
    expect([input.width, input.height]).toEqual([session.width, session.height]);
    input.close();
    await session.startMako();
    const sent = await session.run('gdbus', ['call', '--session', '--dest', 'org.freedesktop.Notifications', '--object-path', '/org/freedesktop/Notifications', '--method', 'org.freedesktop.Notifications.Notify', 'smoke', '0', '', 'hello', 'body', '[]', '{}', '5000']);
    expect(sent.code).toBe(0);
    await session.waitFor(async () => (await session.makoNotifications()).some((n) => n.summary === 'hello' && n.body === 'body'), 'the notification in mako');
  });
});
