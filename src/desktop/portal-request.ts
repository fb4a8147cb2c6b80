/**
 * One call to an XDG desktop portal in its request/response pattern, shared by the
 * GlobalShortcuts (hotkey/portal.ts) and RemoteDesktop (typing/portal.ts) backends: each call
 * takes a `handle_token`, returns the object path of a Request
 * (…/request/<our unique name, ':' dropped, '.' → '_'>/<token>), and the answer comes later as that
 * Request's `Response(u code, a{sv} results)` signal (0 ok, 1 cancelled, 2 failed). We subscribe to
 * the predicted path before calling, so a fast answer is not missed.
 */
import { randomBytes } from 'node:crypto';

import { cancelledError } from '../errors.js';
import type { SessionBus } from '../util/session-bus.js';

export const PORTAL = 'org.freedesktop.portal.Desktop';
export const PORTAL_PATH = '/org/freedesktop/portal/desktop';
const REQUEST = 'org.freedesktop.portal.Request';

export interface PortalCall {
  iface: string;
  method: string;
  signature: string;
  body: (token: string) => unknown[];
  timeoutMs: number;
  /** Gives up waiting (a cancel, a quit); the Request is closed, so the desktop's dialog goes too. */
  signal?: AbortSignal | undefined;
}

/** Resolves [response code, results] once the Request answers; rejects on a D-Bus error, the deadline or an abort. */
export async function portalRequest(session: SessionBus, call: PortalCall, onTimeout: () => Error): Promise<[number, Record<string, unknown>]> {
  if (call.signal?.aborted) throw cancelledError(call.signal);
  const token = `keytap_${randomToken()}`;
  const sender = session.uniqueName;
  const expected = `${PORTAL_PATH}/request/${sender.replace(/^:/, '').replace(/\./g, '_')}/${token}`;
  await session.addMatch(`type='signal',interface='${REQUEST}',member='Response',path='${expected}'`);
  let requestPath = expected;
  let cleanUp: () => void = () => undefined;
  const response = new Promise<[number, Record<string, unknown>]>((resolve, reject) => {
    const giveUp = (error: Error): void => {
      cleanUp();
      // Nobody waits for the answer any more: tell the portal, so it does not keep its dialog up.
      session.call({ destination: PORTAL, path: requestPath, interface: REQUEST, member: 'Close' }, 2_000).catch(() => undefined);
      reject(error);
    };
    const timer = setTimeout(() => giveUp(onTimeout()), call.timeoutMs);
    timer.unref();
    const onAbort = (): void => giveUp(cancelledError(call.signal));
    call.signal?.addEventListener('abort', onAbort, { once: true });
    const stopMessages = session.onMessage((message) => {
      if (message.interface !== REQUEST || message.member !== 'Response') return;
      if (message.path !== expected && message.path !== requestPath) return;
      cleanUp();
      resolve([Number(message.body[0]), (message.body[1] ?? {}) as Record<string, unknown>]);
    });
    const stopClose = session.onClose((error) => {
      cleanUp();
      reject(error);
    });
    cleanUp = () => {
      clearTimeout(timer);
      call.signal?.removeEventListener('abort', onAbort);
      stopMessages();
      stopClose();
    };
  });
  // An abort or a closed bus can reject the answer while the call below is still awaited, before
  // the caller holds the promise: mark it handled now (the caller still gets the rejection).
  response.catch(() => undefined);
  try {
    const reply = await session.call({ destination: PORTAL, path: PORTAL_PATH, interface: call.iface, member: call.method, signature: call.signature, body: call.body(token) });
    const returned = reply.body[0] as unknown;
    // Portals before 0.9 returned a different path; listen there too.
    if (typeof returned === 'string' && returned !== expected) {
      requestPath = returned;
      await session.addMatch(`type='signal',interface='${REQUEST}',member='Response',path='${returned}'`);
    }
  } catch (error) {
    cleanUp();
    throw error;
  }
  return response;
}

export function randomToken(): string {
  return randomBytes(6).toString('hex');
}
