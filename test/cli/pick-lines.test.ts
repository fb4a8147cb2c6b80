// The lines `keytap pick` offers: the finder answers a line, so no two may be alike, and each line
// must lead back to its own key and account.
import { describe, expect, it } from 'vitest';
import { choicesOf } from '../../src/app/account-choices.js';
import type { KeyCredential } from '../../src/device/oath/session.js';

function totp(issuer: string, account: string): KeyCredential {
  return { id: `${issuer}:${account}`, issuer, account, type: 'TOTP', algorithm: 'SHA1', period: 30, digits: 6 };
}

describe("keytap pick's lines", () => {
  it('the same account on three keys of one name without a serial: three different lines, each leading to its own key', () => {
    const keys = ['k1', 'k2', 'k3'].map((id) => ({ id, name: 'YubiKey 5', credentials: [totp('GitHub', 'alice')] }));
    const choices = choicesOf(keys);
    const lines = choices.map((c) => c.line);
    expect(new Set(lines).size).toBe(3);
    expect(lines[0]).toBe('GitHub: alice — YubiKey 5');
    for (const [i, id] of ['k1', 'k2', 'k3'].entries()) expect(choices[lines.indexOf(lines[i]!)]!.keyId).toBe(id);
  });

  it('four copies: the id suffix, then #2, #3 — in the order the keys are listed', () => {
    const keys = [
      { id: 'k1', name: 'K', credentials: [totp('GitHub', 'alice')] },
      { id: 'k2', name: 'K', credentials: [totp('GitHub', 'alice')] },
      { id: 'k3', name: 'K', credentials: [totp('GitHub', 'alice')] },
      { id: 'k4', name: 'K', credentials: [totp('GitHub', 'alice')] },
    ];
    const lines = choicesOf(keys).map((c) => c.line);
    expect(new Set(lines).size).toBe(4);
    expect(lines).toEqual(['GitHub: alice — K', 'GitHub: alice — K [GitHub:alice]', 'GitHub: alice — K [GitHub:alice] #2', 'GitHub: alice — K [GitHub:alice] #3']);
  });
});
