/**
 * The screen on Wayland through the XDG desktop portal (`org.freedesktop.portal.Screenshot`), the
 * only sanctioned way there: `Screenshot(parent_window, {handle_token, interactive: false})`
 * answers, through the request/response pattern (../portal-request.ts), with the `uri` of a PNG
 * file the portal wrote. The desktop may ask the user to allow it (GNOME does, once). The file
 * holds whatever was on the screen, a secret's QR code included: it is read and then deleted.
 * Where no portal answers with a Screenshot interface, the error is a NoScreenshotPortalError, so
 * that index.ts can capture another way (grim.ts).
 */
import { readFile, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

import { KeytapError } from '../../errors.js';
import { connectSessionBus, dbusErrorName, describeError, sessionBusAddress, Variant } from '../../util/session-bus.js';
import type { SessionBus } from '../../util/session-bus.js';
import { PORTAL, PORTAL_PATH, portalRequest } from '../portal-request.js';
import type { ScreenCapture, ScreenShot } from './types.js';

const SCREENSHOT = 'org.freedesktop.portal.Screenshot';
const HINT = 'Save the QR code as a PNG or JPEG file (your desktop\'s screenshot tool does) and read that instead.';

export interface PortalScreenCaptureOptions {
  busAddress?: string | undefined;
  /** How long the user may take in the desktop's "allow a screenshot?" dialog. */
  responseTimeoutMs?: number | undefined;
}

export class PortalScreenCapture implements ScreenCapture {
  readonly name = 'xdg-desktop-portal';

  constructor(private readonly options: PortalScreenCaptureOptions = {}) {}

  async capture(signal?: AbortSignal): Promise<ScreenShot> {
    let session: SessionBus;
    try {
      session = await connectSessionBus(this.options.busAddress ?? sessionBusAddress());
    } catch (error) {
      throw absent(`No D-Bus session bus for the screenshot portal (${describeError(error)}).`);
    }
    const onAbort = (): void => session.close();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await checkPortal(session);
      const [code, results] = await portalRequest(
        session,
        {
          iface: SCREENSHOT,
          method: 'Screenshot',
          signature: 'sa{sv}',
          body: (token) => ['', { handle_token: new Variant('s', token), interactive: new Variant('b', false) }],
          timeoutMs: this.options.responseTimeoutMs ?? 120_000,
        },
        () => unsupported('The screenshot portal did not answer.'),
      );
      if (code === 1) throw new KeytapError('CANCELLED', 'The screenshot was not allowed in the desktop\'s dialog.', { hint: HINT });
      if (code !== 0) throw unsupported(`The screenshot portal refused (response ${code}).`);
      const uri = (results.uri as Variant | undefined)?.value as unknown;
      if (typeof uri !== 'string' || !uri.startsWith('file:')) throw unsupported('The screenshot portal did not say where it saved the screenshot.');
      return { format: 'png', data: await readAndDelete(fileURLToPath(uri)) };
    } catch (error) {
      if (signal?.aborted) throw new KeytapError('CANCELLED', 'The screen capture was cancelled.');
      throw error instanceof KeytapError ? error : unsupported(`The screenshot portal failed (${describeError(error)}).`);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      session.close();
    }
  }
}

async function checkPortal(session: SessionBus): Promise<void> {
  try {
    await session.call({ destination: PORTAL, path: PORTAL_PATH, interface: 'org.freedesktop.DBus.Properties', member: 'Get', signature: 'ss', body: [SCREENSHOT, 'version'] });
  } catch (error) {
    const name = dbusErrorName(error);
    const what =
      name === 'org.freedesktop.DBus.Error.ServiceUnknown' || name === 'org.freedesktop.DBus.Error.NameHasNoOwner'
        ? 'No XDG desktop portal is running'
        : 'The desktop portal has no Screenshot interface';
    throw absent(`${what} (${describeError(error)}).`);
  }
}

async function readAndDelete(path: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (error) {
    throw unsupported(`The screenshot the portal saved cannot be read (${describeError(error)}).`);
  } finally {
    // Best effort: a portal that keeps its files elsewhere (a document store) may not let us.
    await rm(path, { force: true }).catch(() => undefined);
  }
}

function unsupported(message: string): KeytapError {
  return new KeytapError('UNSUPPORTED', message, { hint: HINT });
}

/** There is no screenshot portal to ask (as opposed to one that failed): the caller may capture another way. */
export class NoScreenshotPortalError extends KeytapError {
  constructor(message: string) {
    super('UNSUPPORTED', message, { hint: HINT });
  }
}

function absent(message: string): KeytapError {
  return new NoScreenshotPortalError(message);
}
