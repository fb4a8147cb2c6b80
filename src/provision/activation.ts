/**
 * What an administrator types when activating tokens in a portal (Entra: "Activate", then the
 * code shown on the token): per token its current code, how long that code lasts, and the code
 * after it, so that a session with many tokens is not a race against the clock. Pure.
 */
import { hotp, totp, validityWindow } from '../otp/hotp.js';
import type { SeedToken } from '../seeds/index.js';

export interface ActivationRow {
  serial: string;
  keyId?: string | undefined;
  upn?: string | undefined;
  /** The user's display name, where the ledger has one (from a users file). */
  displayName?: string | undefined;
  /** TOTP: the code at the time; HOTP: the code at the token's counter (the next one the key shows). */
  code: string;
  /** TOTP: whole seconds until the code changes (at least 1); undefined for HOTP, whose code lasts until used. */
  secondsLeft?: number | undefined;
  /** TOTP: the code of the next time step; HOTP: the code at the counter after. */
  next: string;
}

export function activationRow(token: SeedToken, timeSeconds: number): ActivationRow {
  const base = { serial: token.serial, keyId: token.keyId, upn: token.upn, displayName: token.displayName };
  if (token.type === 'HOTP') {
    return { ...base, code: hotp(token.secret, token.counter, token.digits, token.algorithm), next: hotp(token.secret, token.counter + 1, token.digits, token.algorithm) };
  }
  const { validTo } = validityWindow(timeSeconds, token.period);
  return {
    ...base,
    code: totp(token.secret, timeSeconds, token.period, token.digits, token.algorithm),
    secondsLeft: Math.max(1, Math.ceil(validTo - timeSeconds)),
    next: totp(token.secret, validTo, token.period, token.digits, token.algorithm),
  };
}
