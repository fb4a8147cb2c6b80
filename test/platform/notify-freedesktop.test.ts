// The freedesktop notifier against a real server: dunst on Xvfb over a private session bus.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { KeytapError } from '../../src/errors.js';
import { FreedesktopNotifier } from '../../src/notify/freedesktop.js';
import { createNotifier } from '../../src/notify/index.js';
import { Desktop, dunstDisplayed, dunstHistory, missingTool, skipMessage } from './desktop.js';

const missing = missingTool('Xvfb', 'dbus-daemon', 'dunst', 'dunstctl');

describe.skipIf(missing !== undefined)(`org.freedesktop.Notifications against dunst ${skipMessage(missing, 'xvfb, dbus, dunst')}`, () => {
  const desktop = new Desktop();
  const errors: KeytapError[] = [];
  let notifier: FreedesktopNotifier;

  beforeAll(async () => {
    await desktop.startX();
    desktop.startBus();
    await desktop.startDunst();
    notifier = new FreedesktopNotifier({ busAddress: desktop.env.DBUS_SESSION_BUS_ADDRESS, onError: (e) => errors.push(e) });
  });
  afterAll(async () => {
    await notifier?.stop();
    await desktop.stop();
  });

  it('replaces "Touch your key" in place by "Code copied": one notification id, the latest body', async () => {
    const env = desktop.processEnv();
    const touch = await notifier.show({ title: 'keytap', body: 'Touch your key' });
    expect(touch.id).toBeGreaterThan(0);
    const copied = await notifier.show({ title: 'keytap', body: 'Code copied, valid for 17 s', urgency: 'low' }, touch);
    expect(copied.id).toBe(touch.id);
    expect(await dunstDisplayed(env)).toBe(1);
    const history = await dunstHistory(env);
    const ours = history.filter((entry) => entry.appname === 'keytap');
    expect(ours).toHaveLength(1);
    expect(ours[0]).toMatchObject({ id: touch.id, body: 'Code copied, valid for 17 s' });
    expect(errors).toEqual([]);
  });

  // dunst's history keeps no urgency (the state tests check it); it keeps the timeout and the icon.
  it('a sticky "Touch your key" never expires, whatever its timeoutMs, and shows the touch icon; an error the error icon', async () => {
    const env = desktop.processEnv();
    await notifier.show({ title: 'Touch your key', body: 'GitHub:alice on Nitrokey 3', urgency: 'normal', sticky: true, timeoutMs: 30_000, icon: 'touch' });
    await notifier.show({ title: 'Could not copy the code', body: 'No clipboard tool.', urgency: 'normal', icon: 'error' });
    const [failed, prompt] = (await dunstHistory(env)).filter((entry) => entry.appname === 'keytap');
    expect(prompt).toMatchObject({ summary: 'Touch your key', timeout: 0 });
    expect(prompt?.iconPath).toMatch(/\/icons\/touch-64\.png$/u);
    expect(failed).toMatchObject({ summary: 'Could not copy the code' });
    expect(failed?.iconPath).toMatch(/\/icons\/error-64\.png$/u);
    expect(failed?.timeout).not.toBe(0);
  });

  it('closes a notification', async () => {
    const env = desktop.processEnv();
    const handle = await notifier.show({ title: 'keytap', body: 'Touch your key' });
    expect(await dunstDisplayed(env)).toBe(1);
    await notifier.close(handle);
    await desktop.waitFor(async () => (await dunstDisplayed(env)) === 0);
    // A closed handle is not replaced: the next toast is a new notification.
    const next = await notifier.show({ title: 'keytap', body: 'Code copied' }, handle);
    expect(next.id).not.toBe(handle.id);
    await notifier.close(next);
  });

  it('survives dunst being killed: inert handles, one error, then works again once dunst is back', async () => {
    const env = desktop.processEnv();
    const before = await notifier.show({ title: 'keytap', body: 'Touch your key' });
    await desktop.stopDunst();
    errors.length = 0;
    const whileDown = await notifier.show({ title: 'keytap', body: 'Code copied' }, before);
    const again = await notifier.show({ title: 'keytap', body: 'Code copied' }, whileDown);
    expect(whileDown.id).toBe(0);
    expect(again.id).toBe(0);
    await notifier.close(whileDown);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.code).toBe('UNSUPPORTED');
    expect(errors[0]?.hint).toMatch(/notification daemon/);

    await desktop.startDunst();
    // The old handle belongs to the dead server: it must not be used as replaces_id.
    const after = await notifier.show({ title: 'keytap', body: 'key connected, 3 accounts' }, before);
    expect(after.id).toBeGreaterThan(0);
    expect(await dunstDisplayed(env)).toBe(1);
    const history = await dunstHistory(env);
    expect(history.filter((entry) => entry.appname === 'keytap').map((entry) => entry.body)).toEqual(['key connected, 3 accounts']);
  });

  it('without any session bus, show() resolves an inert handle and reports once', async () => {
    const reported: KeytapError[] = [];
    const orphan = new FreedesktopNotifier({ busAddress: `unix:path=${desktop.dir}/no-such-bus`, onError: (e) => reported.push(e) });
    const a = await orphan.show({ title: 'keytap', body: 'one' });
    const b = await orphan.show({ title: 'keytap', body: 'two' }, a);
    await orphan.close(b);
    await orphan.stop();
    expect([a.id, b.id]).toEqual([0, 0]);
    expect(reported).toHaveLength(1);
  });

  it('createNotifier picks the freedesktop notifier on Linux, none without a bus or when disabled', async () => {
    const linux = createNotifier({ platform: 'linux', env: { DBUS_SESSION_BUS_ADDRESS: desktop.env.DBUS_SESSION_BUS_ADDRESS } });
    expect(linux.name).toBe('org.freedesktop.Notifications');
    await linux.stop();
    expect(createNotifier({ platform: 'linux', env: {} }).name).toBe('none');
    expect(createNotifier({ platform: 'linux', env: desktop.env, disabled: true }).name).toBe('none');
    expect(createNotifier({ platform: 'win32', env: {} }).name).toBe('node-notifier');
    expect(createNotifier({ platform: 'darwin', env: {} }).name).toBe('node-notifier');
  });
});
