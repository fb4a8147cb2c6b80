/** Choosing credentials by a user's query, as `keytap code github` does. Pure. */
import { KeytapError } from '../../errors.js';
import type { KeyCredential } from './session.js';

/**
 * An exact id wins; otherwise every credential whose id contains the query, ignoring case.
 * Without a query, all of them.
 */
export function matchCredentials<T extends Pick<KeyCredential, 'id'>>(credentials: readonly T[], query: string | undefined): T[] {
  if (query === undefined || query === '') return [...credentials];
  const exact = credentials.filter((c) => c.id === query);
  if (exact.length > 0) return exact;
  const needle = query.toLowerCase();
  return credentials.filter((c) => c.id.toLowerCase().includes(needle));
}

/** Exactly one match, or NO_MATCH / AMBIGUOUS naming the candidates. */
export function matchOne<T extends Pick<KeyCredential, 'id'>>(credentials: readonly T[], query: string | undefined): T {
  const matches = matchCredentials(credentials, query);
  if (matches.length === 1) return matches[0]!;
  if (matches.length === 0) {
    if (credentials.length === 0) throw new KeytapError('NO_MATCH', 'The key holds no accounts.', { detail: { kind: 'no-accounts' } });
    throw new KeytapError('NO_MATCH', `No account matches "${query ?? ''}".`, { hint: `Accounts on the key: ${credentials.map((c) => c.id).join(', ')}` });
  }
  throw new KeytapError('AMBIGUOUS', `${matches.length} accounts match${query ? ` "${query}"` : ''}: ${matches.map((c) => c.id).join(', ')}.`, {
    hint: 'Give a query that matches exactly one of them (the full name always does).',
  });
}
