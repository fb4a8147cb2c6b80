/**
 * Which account the shortcut means for the window that had the focus when it was pressed. Pure.
 *
 * An account's own window rules come first: when any rule matches the window, the accounts of the
 * matching rules are the answer and nothing else is looked at (a rule is there to settle what the
 * issuer alone would not). Otherwise the issuer of each account that has no rule of its own is
 * looked for in the window's title as a whole word, case-insensitive: "GitHub:alice" for "Sign in
 * to GitHub", not for "GitHubber". The same name on several keys (a key and its backup) is one
 * account, read from the preferred key when it holds it (as choose-account.ts does).
 *
 * The window's title can hold private text: what this returns says which rule or issuer matched,
 * never the title, so the log line built from it is safe.
 */
import { KeytapError } from '../errors.js';
import type { DefaultAccount, WindowRule } from './config.js';

export interface FocusedWindowFacts {
  title?: string | undefined;
  /** The application: WM_CLASS on X11, app_id on Wayland, the executable's name on Windows, the bundle's name on macOS. */
  app?: string | undefined;
}

/** An account the shortcut could read: its key (id and serial, as accountKeyRef names it) and its name. */
export interface WindowAccount {
  keyId: string;
  /** The key's serial where it has one (window rules and the default account name keys by it). */
  keySerial?: string | undefined;
  credentialId: string;
  issuer?: string | undefined;
}

export interface MatchedAccount {
  keyId: string;
  credentialId: string;
}

export type WindowMatch =
  | { kind: 'one'; account: MatchedAccount; why: string }
  | { kind: 'several'; accounts: MatchedAccount[]; why: string }
  | { kind: 'none' };

/**
 * The accounts among `accounts` (in the order keytap found them) that the window calls for.
 * `preferredKey` (a key id or serial: the default account's) picks the key of a name on several.
 */
export function matchWindow(window: FocusedWindowFacts | undefined, accounts: readonly WindowAccount[], rules: readonly WindowRule[], preferredKey?: string): WindowMatch {
  if (!window || (!window.title && !window.app)) return { kind: 'none' };
  const ruled: WindowAccount[] = [];
  const matchedRules: number[] = [];
  rules.forEach((rule, index) => {
    if (!ruleMatches(rule, window)) return;
    const of = accounts.filter((a) => ruleNames(rule, a));
    if (of.length === 0) return; // its account is not on a connected key
    matchedRules.push(index + 1);
    ruled.push(...of);
  });
  if (ruled.length > 0) return answer(ruled, preferredKey, `window rule${matchedRules.length > 1 ? 's' : ''} ${matchedRules.join(', ')} of the settings`);

  if (!window.title) return { kind: 'none' };
  const withRules = (a: WindowAccount): boolean => rules.some((rule) => ruleNames(rule, a));
  const byIssuer = accounts.filter((a) => !withRules(a) && a.issuer !== undefined && a.issuer.trim() !== '' && containsWord(window.title!, a.issuer));
  if (byIssuer.length === 0) return { kind: 'none' };
  const issuers = [...new Set(byIssuer.map((a) => a.issuer!))];
  return answer(byIssuer, preferredKey, `the issuer${issuers.length > 1 ? 's' : ''} ${issuers.map((i) => JSON.stringify(i)).join(', ')} in the window's title`);
}

/** Whether every condition the rule sets holds for the window (a rule with none matches nothing). */
export function ruleMatches(rule: WindowRule, window: FocusedWindowFacts): boolean {
  if (rule.title === undefined && rule.titlePattern === undefined && rule.app === undefined) return false;
  const title = window.title ?? '';
  if (rule.title !== undefined && !title.toLowerCase().includes(rule.title.toLowerCase())) return false;
  if (rule.titlePattern !== undefined) {
    const pattern = compilePattern(rule.titlePattern);
    if (!pattern || window.title === undefined || !pattern.test(title)) return false;
  }
  if (rule.app !== undefined && (window.app === undefined || !sameApp(rule.app, window.app))) return false;
  return true;
}

/** A rule's titlePattern as a case-insensitive regular expression; undefined when it is not one. */
export function compilePattern(source: string): RegExp | undefined {
  try {
    return new RegExp(source, 'i');
  } catch {
    return undefined;
  }
}

/** `word` in `text` with no letter or digit touching either end, case-insensitive. */
export function containsWord(text: string, word: string): boolean {
  const escaped = word.trim().replace(/[.*+?^${}()|[\]\\]/gu, '\\$&');
  return new RegExp(`(?<![\\p{L}\\p{N}])${escaped}(?![\\p{L}\\p{N}])`, 'iu').test(text);
}

/** Application names compare case-insensitively, and without Windows' ".exe". */
function sameApp(wanted: string, app: string): boolean {
  const bare = (name: string): string => name.trim().toLowerCase().replace(/\.exe$/u, '');
  return bare(wanted) === bare(app);
}

function ruleNames(rule: WindowRule, account: WindowAccount): boolean {
  if (rule.credentialId !== account.credentialId) return false;
  if (rule.keyId === undefined) return true;
  const ref = rule.keyId.toLowerCase();
  return ref === account.keyId.toLowerCase() || ref === account.keySerial?.toLowerCase();
}

function answer(found: readonly WindowAccount[], preferredKey: string | undefined, why: string): WindowMatch {
  const wanted = preferredKey?.toLowerCase();
  const byName = new Map<string, WindowAccount>();
  for (const account of found) {
    const preferred = wanted !== undefined && (account.keyId.toLowerCase() === wanted || account.keySerial?.toLowerCase() === wanted);
    if (!byName.has(account.credentialId) || preferred) byName.set(account.credentialId, account);
  }
  const accounts = [...byName.values()].map((a) => ({ keyId: a.keyId, credentialId: a.credentialId }));
  return accounts.length === 1 ? { kind: 'one', account: accounts[0]!, why } : { kind: 'several', accounts, why };
}

/**
 * `keytap code --focused`: the account the window calls for, else the default account when its
 * key holds it, else undefined (the only account, as `keytap code` reads). Several that fit are
 * an AMBIGUOUS error naming them (a command has no finder to offer them in); never the title.
 */
export function accountForCommand(
  window: FocusedWindowFacts | undefined,
  accounts: readonly WindowAccount[],
  rules: readonly WindowRule[],
  defaultAccount: DefaultAccount | null | undefined,
): (MatchedAccount & { why: string }) | undefined {
  const match = matchWindow(window, accounts, rules, defaultAccount?.keyId);
  if (match.kind === 'one') return { ...match.account, why: match.why };
  if (match.kind === 'several') {
    throw new KeytapError('AMBIGUOUS', `${match.accounts.length} accounts fit the focused window (${match.why}): ${match.accounts.map((a) => a.credentialId).join(', ')}.`, {
      hint: 'Add a window rule for it to the settings file (windowRules), or name the account: keytap code QUERY.',
    });
  }
  if (!defaultAccount) return undefined;
  const wanted = defaultAccount.keyId.toLowerCase();
  const held = accounts.find((a) => a.credentialId === defaultAccount.credentialId && (a.keyId.toLowerCase() === wanted || a.keySerial?.toLowerCase() === wanted));
  return held ? { keyId: held.keyId, credentialId: held.credentialId, why: 'the default account' } : undefined;
}
