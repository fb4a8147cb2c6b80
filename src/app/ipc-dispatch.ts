/**
 * What the running keytap answers over IPC (`keytap code`, `keytap list`, `keytap quit`, ping):
 * each request goes to the controller. Pings are answered at once, everything else once the
 * controller has started (the keys present at start are known then).
 */
import { KeytapError } from '../errors.js';
import type { Controller } from './controller.js';
import type { IpcHandler } from './ipc.js';

export interface IpcDispatch {
  handler: IpcHandler;
  /** The controller is started: requests waiting for it go on. */
  ready(controller: Controller): void;
  /** Shutting down: nothing waits for `ready` any more (if it never came, requests are refused). */
  closed(): void;
}

export function createIpcDispatch(identity: { pid: number; version: string }): IpcDispatch {
  let controller: Controller | undefined;
  let open!: () => void;
  const started = new Promise<void>((resolve) => (open = resolve));
  const handler: IpcHandler = async (request, context) => {
    if (request.op === 'ping') return { pid: identity.pid, version: identity.version };
    await started;
    if (!controller) throw new KeytapError('DEVICE_ERROR', 'keytap is shutting down.');
    switch (request.op) {
      case 'code': {
        const answer = await controller.requestCode(request.query, {
          signal: context.signal,
          deliver: request.deliver,
          focused: request.focused,
          onTouch: (id) => context.send({ event: 'touch', id }),
        });
        return { ...answer };
      }
      case 'read': {
        const answer = await controller.readAccount(request.keyId, request.credentialId, {
          signal: context.signal,
          onTouch: (id) => context.send({ event: 'touch', id }),
        });
        return { ...answer };
      }
      case 'list':
        return { keys: await controller.listKeys() };
      case 'quit':
        controller.quit();
        return {};
    }
  };
  return {
    handler,
    ready: (c) => {
      controller = c;
      open();
    },
    closed: () => open(),
  };
}
