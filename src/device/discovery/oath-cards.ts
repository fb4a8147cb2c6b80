/**
 * Which cards in PC/SC readers other than Yubico's have answered SELECT OATH, remembered across
 * keytap processes in the runtime folder, so that a card is probed once per insertion rather than
 * by every command and every rescan of the tray (a probe takes the card exclusively, and another
 * program asking for it then finds it busy).
 *
 * An entry holds for one insertion of one card: the reader's name, the card's ATR, and the reader's
 * event counter, which the PC/SC service keeps in the upper 16 bits of SCardGetStatusChange's
 * dwEventState and counts up at every insertion and removal (pcsc-lite's winscard_clnt.c;
 * Windows does the same). A card taken out and put back, or another card, changes the counter, so
 * the entry no longer matches. Where the service keeps no counter (it stays 0) nothing is
 * remembered. Only yes is remembered: a stale yes costs an error when the key is opened, a stale no
 * would hide a key. The file is a cache: unreadable means empty, a failed write is ignored.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../util/atomic-file.js';
import { runtimeDir } from '../../util/runtime-dir.js';

/** Not `.json`: the watcher takes `*.json` in the runtime folder for virtual keys plugging in. */
const FILE = 'pcsc-oath-cards.cache';

export interface CardInsertion {
  reader: string;
  /** The ATR, hex. */
  atr: string;
  /** The reader's event counter (dwEventState >>> 16). */
  events: number;
}

/** The insertion a reader's state describes, or undefined when it cannot be told apart from the next one. */
export function cardInsertion(reader: { name: string; state: number; atr: Uint8Array | undefined }): CardInsertion | undefined {
  const events = reader.state >>> 16;
  if (events === 0 || !reader.atr || reader.atr.length === 0) return undefined;
  return { reader: reader.name, atr: Buffer.from(reader.atr).toString('hex'), events };
}

type Entries = Record<string, { atr: string; events: number; identity?: string }>;

/** What was remembered of an insertion that answered SELECT OATH. */
export interface KnownOathCard {
  /** oath/identity.ts's identity of the key, where its SELECT answer told one. */
  identity: string | undefined;
}

async function read(): Promise<Entries> {
  try {
    const parsed = JSON.parse(await readFile(join(runtimeDir(), FILE), 'utf8')) as { cards?: unknown };
    return typeof parsed.cards === 'object' && parsed.cards !== null ? (parsed.cards as Entries) : {};
  } catch {
    return {};
  }
}

/** What this very insertion answered to SELECT OATH before, if it answered yes. */
export async function knownOathCard(insertion: CardInsertion): Promise<KnownOathCard | undefined> {
  const entry = (await read())[insertion.reader];
  if (entry === undefined || entry.atr !== insertion.atr || entry.events !== insertion.events) return undefined;
  return { identity: typeof entry.identity === 'string' ? entry.identity : undefined };
}

/** Remembers a yes (and the identity the card told) for this insertion, or forgets what was remembered for the reader. */
export async function rememberOathCard(insertion: CardInsertion, oath: boolean, identity?: string): Promise<void> {
  const cards = await read();
  const before = cards[insertion.reader];
  if (oath) {
    if (before?.atr === insertion.atr && before.events === insertion.events && before.identity === identity) return;
    cards[insertion.reader] = { atr: insertion.atr, events: insertion.events, ...(identity === undefined ? {} : { identity }) };
  } else {
    if (before === undefined) return;
    delete cards[insertion.reader];
  }
  try {
    await writeFileAtomic(join(runtimeDir(), FILE), `${JSON.stringify({ cards })}\n`, { overwrite: true });
  } catch {
    // a cache: the next command probes again
  }
}
