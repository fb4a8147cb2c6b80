/**
 * What the QR codes in an image hold, as accounts to add: an `otpauth://` URI is one account, a
 * Google Authenticator export (`otpauth-migration://`) any number. Anything else is described
 * (a web address by its host, text by its length), never repeated: it might hold a secret. Pure.
 */
import { KeytapError } from '../errors.js';
import type { CredentialWithSecret } from '../otp/credential.js';
import { isMigrationUri, parseMigrationUri } from '../otp/migration.js';
import { parseOtpauthUri } from '../otp/otpauth-uri.js';
import { findQrCodes } from './find.js';
import type { FindOptions } from './find.js';
import { readImage } from './image.js';
import type { RgbaImage } from './image.js';

export interface QrAccount {
  credential: CredentialWithSecret;
  /** Where it came from: "otpauth URI", "Google Authenticator export (QR code 1 of 2)". */
  source: string;
}

export interface QrScan {
  /** How many QR codes were found. */
  codes: number;
  accounts: QrAccount[];
  /** One line for each code or exported account that gives no account, saying what it is or why. */
  skipped: string[];
  /** The Google Authenticator exports split over several QR codes of which some were not read. */
  incomplete: IncompleteExport[];
  where: QrSource;
}

export interface IncompleteExport {
  /** The export's batch id, shared by its codes. */
  id: number;
  size: number;
  /** The 1-based numbers of its codes that were not read. */
  missing: number[];
}

/** Where the image came from, for the messages. */
export type QrSource = 'image' | 'screen';

/**
 * The accounts in every QR code of `image`. Throws BAD_INPUT when there is none to add (saying
 * how long it searched when the time budget ran out first), CANCELLED on an abort.
 */
export async function scanImage(image: RgbaImage, where: QrSource, options: FindOptions = {}): Promise<QrScan> {
  const search = await findQrCodes(image, options);
  const texts = search.codes.map((code) => code.text);
  if (texts.length === 0) {
    const searched = search.outOfTime ? ` (searched ${Number((search.elapsedMs / 1000).toFixed(1))} s)` : '';
    throw new KeytapError('BAD_INPUT', where === 'screen' ? `No QR code found on the screen${searched}.` : `No QR code found in the image${searched}.`, {
      hint:
        where === 'screen'
          ? 'Show the QR code larger (zoom in) and uncovered, or save it as a PNG or JPEG file and read that.'
          : 'Use an image where the code is sharp and large enough (a screenshot rather than a photo), as PNG or JPEG.',
    });
  }
  const scan = accountsFromCodes(texts, where);
  if (scan.accounts.length === 0) {
    const what = scan.codes === 1 ? 'The QR code holds no account' : `None of the ${scan.codes} QR codes holds an account`;
    throw new KeytapError('BAD_INPUT', `${what}: ${scan.skipped.join('; ')}.`, {
      hint: 'keytap reads otpauth:// URIs and Google Authenticator exports (otpauth-migration://); a site shows such a code when you set up two-factor authentication.',
    });
  }
  return scan;
}

/** What is scanned: pixels (an X11 capture), or the bytes of a PNG/JPEG file (the portal's screenshot, a file given). */
export type QrImage = ({ format: 'rgba' } & RgbaImage) | { format: 'png' | 'file'; data: Uint8Array };

/**
 * scanImage of a capture or a file's bytes, decoded if need be; whatever happens, the bytes and
 * the pixels are zeroed afterwards: the screen may show more secrets than the one wanted.
 */
export async function scanAndWipe(image: QrImage, where: QrSource, options: FindOptions = {}): Promise<QrScan> {
  let pixels: RgbaImage | undefined;
  try {
    pixels = image.format === 'rgba' ? image : readImage(image.data);
    return await scanImage(pixels, where, options);
  } finally {
    pixels?.data.fill(0);
    image.data.fill(0);
  }
}

export function accountsFromCodes(found: readonly string[], where: QrSource = 'image'): QrScan {
  // One code is often on screen twice (a window and its thumbnail, a page and its preview).
  const texts = [...new Set(found.map((text) => text.trim()))];
  const scan: QrScan = { codes: texts.length, accounts: [], skipped: [], incomplete: [], where };
  /** The codes read of each export split over several, by batch id and size. */
  const batches = new Map<string, { id: number; size: number; read: Set<number> }>();
  for (const text of texts) {
    if (/^otpauth:\/\//iu.test(text.trim())) {
      try {
        scan.accounts.push({ credential: parseOtpauthUri(text), source: 'otpauth URI' });
      } catch (error) {
        if (!(error instanceof KeytapError)) throw error;
        scan.skipped.push(`an otpauth URI that cannot be read (${withoutFinalStop(error.message)})`);
      }
    } else if (isMigrationUri(text)) {
      let payload;
      try {
        payload = parseMigrationUri(text);
      } catch (error) {
        if (!(error instanceof KeytapError)) throw error;
        scan.skipped.push(`a Google Authenticator export that cannot be read (${withoutFinalStop(error.message)})`);
        continue;
      }
      const { batch } = payload;
      const source = batch.size > 1 ? `Google Authenticator export (QR code ${batch.index + 1} of ${batch.size})` : 'Google Authenticator export';
      if (batch.size > 1) {
        const key = `${batch.id}/${batch.size}`;
        const read = batches.get(key) ?? { id: batch.id, size: batch.size, read: new Set<number>() };
        read.read.add(batch.index);
        batches.set(key, read);
      }
      if (payload.accounts.length === 0) scan.skipped.push(`a ${source} with no accounts`);
      for (const account of payload.accounts) {
        if (account.ok) scan.accounts.push({ credential: account.credential, source });
        else scan.skipped.push(`${account.issuer ? `${account.issuer}: ` : ''}${account.account} from the ${source}: ${account.problem}`);
      }
    } else {
      scan.skipped.push(describeText(text));
    }
  }
  for (const { id, size, read } of batches.values()) {
    const missing = Array.from({ length: size }, (_, index) => index).filter((index) => !read.has(index));
    if (missing.length > 0) scan.incomplete.push({ id, size, missing: missing.map((index) => index + 1) });
  }
  return scan;
}

/** What a QR code that is no account holds, without repeating it. */
export function describeText(text: string): string {
  const trimmed = text.trim();
  let url: URL | undefined;
  try {
    url = /^[a-z][a-z0-9+.-]*:/iu.test(trimmed) ? new URL(trimmed) : undefined;
  } catch {
    url = undefined;
  }
  if (url && (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '') return `a web address on ${url.hostname}, not an otpauth:// URI`;
  if (url) return `a ${url.protocol.slice(0, -1).toLowerCase()}: URI, not an otpauth:// URI`;
  return `text of ${[...trimmed].length} characters, not an otpauth:// URI`;
}

function withoutFinalStop(message: string): string {
  return message.replace(/\.$/u, '');
}
