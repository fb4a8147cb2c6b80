/**
 * The accounts of the connected keys as lines for a fuzzy finder (`keytap pick`, and the tray on a
 * host that cannot show its menu): labelled as the tray labels them, with the key when there are
 * several. The lines carry names only: never a code or a secret.
 */
import type { KeyCredential } from '../device/oath/session.js';
import { printable } from '../util/printable.js';
import { accountLabel } from './account-label.js';

export interface Choice {
  keyId: string;
  keyName: string;
  credential: KeyCredential;
  line: string;
}

/** One line per account, as the tray labels it; the key too when there are several; no two lines alike. */
export function choicesOf(keys: { id: string; name: string; serial?: string | undefined; credentials: KeyCredential[] }[]): Choice[] {
  const choices: Choice[] = [];
  const seen = new Set<string>();
  for (const key of keys) {
    const keyName = key.serial ? `${key.name} (${key.serial.toUpperCase()})` : key.name;
    for (const credential of key.credentials) {
      let line = printable(keys.length > 1 ? `${accountLabel(credential)} — ${keyName}` : accountLabel(credential));
      // The finder answers a line, not a position: a line alike another (the same account on two
      // keys of one name without a serial) would read the wrong key.
      if (seen.has(line)) line = `${line} [${printable(credential.id)}]`;
      const base = line;
      for (let n = 2; seen.has(line); n++) line = `${base} #${n}`;
      seen.add(line);
      choices.push({ keyId: key.id, keyName, credential, line });
    }
  }
  return choices;
}
