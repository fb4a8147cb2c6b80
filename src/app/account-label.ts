/**
 * How an account is named to a person in the tray (menu, tooltip, toasts). Pure. Logs and the CLI
 * keep the stored name ("60/Bank:alice"): it is what a user types and what the key holds.
 */
import type { KeyCredential } from '../device/oath/session.js';
import { DEFAULT_PERIOD, parseCredentialId } from '../otp/credential.js';
import type { AppState } from './state.js';

type LabelledCredential = Pick<KeyCredential, 'id' | 'issuer' | 'account' | 'type' | 'period' | 'touch'>;

/**
 * An account as a person reads it: "Bank: alice", not the stored name "60/Bank:alice". A period
 * other than 30 s is part of what tells two accounts apart (both names may be on one key), so it
 * stays, as a marker. Markers are words, not emoji, so every tray host and screen reader renders them.
 */
export function accountLabel(credential: LabelledCredential, markers: 'all' | 'period' = 'all'): string {
  const marks: string[] = [];
  if (credential.type === 'TOTP' && credential.period !== DEFAULT_PERIOD) marks.push(`${credential.period} s`);
  if (markers === 'all' && credential.type === 'HOTP') marks.push('HOTP');
  if (markers === 'all' && credential.touch === true) marks.push('touch');
  const name = credential.issuer ? `${credential.issuer}: ${credential.account}` : credential.account;
  return marks.length > 0 ? `${name} (${marks.join(', ')})` : name;
}

/** The label of an account known by its id only (the key is away, or the id is all the state keeps). */
export function accountLabelOf(state: Pick<AppState, 'keys'>, keyId: string | undefined, credentialId: string): string {
  const credential = state.keys.find((k) => k.id === keyId)?.credentials.find((c) => c.id === credentialId);
  if (credential) return accountLabel(credential, 'period');
  return accountLabel({ id: credentialId, ...parseCredentialId(credentialId, 'TOTP'), type: 'TOTP' }, 'period');
}
