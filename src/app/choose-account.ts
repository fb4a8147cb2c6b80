/**
 * Which account `keytap code QUERY` means when several keys are plugged in. Pure.
 *
 * The same name on several keys (a key and its backup, programmed alike) is one account: the
 * user means the name, not a key. It is read from the key the default-account setting names when
 * that key holds it, else from the first key keytap found. Only different names matching the
 * query are ambiguous; when they are on different keys, the error names the keys, so that the
 * edge can say how to choose one.
 */
import { matchCredentials, matchOne } from '../device/oath/match.js';
import { KeytapError } from '../errors.js';

export interface AccountHolder {
  readonly id: string;
  readonly name: string;
  readonly serial?: string | undefined;
  readonly credentials: readonly { readonly id: string }[];
}

export interface AccountChoice {
  keyId: string;
  credentialId: string;
}

/** `keys` in the order keytap found them; `preferredKey` is a key id or serial (the default account's key). */
export function chooseAccount(keys: readonly AccountHolder[], query: string | undefined, preferredKey?: string): AccountChoice {
  const all = keys.flatMap((key) => key.credentials.map((credential) => ({ id: credential.id, key })));
  const matches = matchCredentials(all, query);
  const names = [...new Set(matches.map((m) => m.id))];
  if (names.length === 1) {
    const holders = matches.map((m) => m.key);
    const wanted = preferredKey?.toLowerCase();
    const key = holders.find((k) => wanted !== undefined && (k.id.toLowerCase() === wanted || k.serial?.toLowerCase() === wanted)) ?? holders[0]!;
    return { keyId: key.id, credentialId: names[0]! };
  }
  const holders = [...new Set(matches.map((m) => m.key))];
  // None, or several on one key: matchOne throws NO_MATCH or AMBIGUOUS in the words it has for a
  // single key (each name listed once); with 0 or 2+ names matching it always throws.
  if (holders.length <= 1) matchOne([...new Set(all.map((m) => m.id))].map((id) => ({ id })), query);
  const where = (id: string): string => matches.filter((m) => m.id === id).map((m) => keyLabel(m.key)).join(', ');
  throw new KeytapError('AMBIGUOUS', `${names.length} accounts match${query ? ` "${query}"` : ''}: ${names.map((id) => `${id} (on ${where(id)})`).join(', ')}.`, {
    hint: 'Give more of the name (the full name always does).',
    detail: { kind: 'ambiguous-keys', keys: holders.map((k) => ({ name: k.name, device: k.serial ?? k.id })) },
  });
}

function keyLabel(key: AccountHolder): string {
  return key.serial === undefined ? key.name : `${key.name} ${key.serial}`;
}
