/**
 * One call in the XDG desktop portal's request/response pattern: the call takes a `handle_token`
 * and returns the object path of a Request (…/request/<our unique name, ':' dropped, '.' → '_'>/<token>);
 * the answer comes later as that Request's `Response(u code, a{sv} results)` signal (0 ok,
 * 1 cancelled by the user, 2 failed). The predicted path is subscribed to before the call, so a
 * fast answer is not missed; portals before 0.9 returned another path, which is listened to as well.
 */
import { randomBytes } from 'node:crypto';

import type { SessionBus } from '../util/session-bus.js';

export const PORTAL = 'org.freedesktop.portal.Desktop';
export const PORTAL_PATH = '/org/freedesktop/portal/desktop';
const REQUEST = 'org.freedesktop.portal.Request';

export interface PortalCall {
  interface: string;
  method: string;
  signature: string;
  /** The call's arguments, given the handle token to put in its options. */
  body: (token: string) => unknown[];
  timeoutMs: number;
  /** The error when no Response comes in time. */
  timedOut: () => Error;
}

/** The Response's code and results; rejects when the call fails or the bus goes away. */
export async function portalRequest(session: SessionBus, call: PortalCall): Promise<{ code: number; results: Record<string, unknown> }> {
  const token = `keytap_${randomToken()}`;
  const sender = session.uniqueName;
  const expected = `${PORTAL_PATH}/request/${sender.replace(/^:/, '').replace(/\./g, '_')}/${token}`;
  await session.addMatch(`type='signal',interface='${REQUEST}',member='Response',path='${expected}'`);
  let requestPath = expected;
  let remove: () => void = () => undefined;
  const response = new Promise<{ code: number; results: Record<string, unknown> }>((resolve, reject) => {
    const timer = setTimeout(() => reject(call.timedOut()), call.timeoutMs);
    timer.unref();
    const stop = session.onMessage((message) => {
      if (message.interface !== REQUEST || message.member !== 'Response') return;
      if (message.path !== expected && message.path !== requestPath) return;
      clearTimeout(timer);
      stop();
      resolve({ code: Number(message.body[0]), results: (message.body[1] ?? {}) as Record<string, unknown> });
    });
    session.onClose((error) => {
      clearTimeout(timer);
      reject(error);
    });
    remove = () => {
      clearTimeout(timer);
      stop();
    };
  });
  try {
    const reply = await session.call({ destination: PORTAL, path: PORTAL_PATH, interface: call.interface, member: call.method, signature: call.signature, body: call.body(token) });
    const returned = reply.body[0] as unknown;
    if (typeof returned === 'string' && returned !== expected) {
      requestPath = returned;
      await session.addMatch(`type='signal',interface='${REQUEST}',member='Response',path='${returned}'`);
    }
  } catch (error) {
    remove();
    response.catch(() => undefined);
    throw error;
  }
  return response;
}

export function randomToken(): string {
  return randomBytes(6).toString('hex');
}
