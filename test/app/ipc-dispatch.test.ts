import { afterEach, describe, expect, it } from 'vitest';
import { createIpcDispatch } from '../../src/app/ipc-dispatch.js';
import type { IpcContext, IpcTouchEvent } from '../../src/app/ipc.js';
import { rejection } from '../support/rejection.js';
import type { Rig } from './fakes.js';
import { FakeDevice, descriptor, flush, rig } from './fakes.js';
import { TOTP, TOUCH } from './fixtures.js';

const rigs: Rig[] = [];
afterEach(async () => {
  for (const r of rigs.splice(0)) {
    await r.controller.stop();
    r.config.close();
  }
});

function context(): IpcContext & { events: IpcTouchEvent[] } {
  const events: IpcTouchEvent[] = [];
  return { signal: new AbortController().signal, send: (event) => events.push(event), events };
}

async function started(credentials = [TOTP]): Promise<Rig & { device: FakeDevice }> {
  const r = rig();
  rigs.push(r);
  const device = new FakeDevice(credentials, '1234ABCD');
  r.devices.set('k1', device);
  r.keys.initial.push(descriptor('k1'));
  await r.controller.start();
  await flush(r);
  return { ...r, device };
}

describe('the IPC dispatch of the running keytap', () => {
  it('answers a ping at once, and holds other requests until the controller has started', async () => {
    const ipc = createIpcDispatch({ pid: 4242, version: '9.9.9' });
    await expect(ipc.handler({ op: 'ping' }, context())).resolves.toEqual({ pid: 4242, version: '9.9.9' });
    let answered = false;
    const listing = ipc.handler({ op: 'list' }, context()).then((answer) => ((answered = true), answer));
    await new Promise((resolve) => setImmediate(resolve));
    expect(answered).toBe(false);
    const r = await started();
    ipc.ready(r.controller);
    const answer = (await listing) as { keys: { id: string; credentials: { id: string }[] }[] };
    expect(answer.keys.map((k) => [k.id, k.credentials.map((c) => c.id)])).toEqual([['k1', [TOTP.id]]]);
  });

  it('code goes through the controller, passing the touch prompt on; quit asks the controller to quit', async () => {
    const r = await started([TOUCH]);
    const ipc = createIpcDispatch({ pid: 1, version: 'x' });
    ipc.ready(r.controller);
    const ctx = context();
    const code = ipc.handler({ op: 'code', query: 'github' }, ctx);
    await flush(r);
    expect(ctx.events).toEqual([{ event: 'touch', id: TOUCH.id }]);
    r.device.release();
    await expect(code).resolves.toMatchObject({ id: TOUCH.id, code: '287082' });
    expect(r.clipboard.copies.map((c) => c.text)).toEqual(['287082']);

    let quit = false;
    void r.controller.quitRequested.then(() => (quit = true));
    await expect(ipc.handler({ op: 'quit' }, context())).resolves.toEqual({});
    await flush(r);
    expect(quit).toBe(true);
  });

  it('closed before the controller started: waiting requests are refused, pings still answered', async () => {
    const ipc = createIpcDispatch({ pid: 7, version: 'x' });
    const waiting = ipc.handler({ op: 'code' }, context());
    ipc.closed();
    const error = await rejection(waiting);
    expect(error.code).toBe('DEVICE_ERROR');
    expect(error.message).toBe('keytap is shutting down.');
    await expect(ipc.handler({ op: 'ping' }, context())).resolves.toEqual({ pid: 7, version: 'x' });
  });
});
