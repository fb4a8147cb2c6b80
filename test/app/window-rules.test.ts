import { describe, expect, it } from 'vitest';
import type { WindowRule } from '../../src/app/config.js';
import type { WindowAccount } from '../../src/app/window-rules.js';
import { accountForCommand, containsWord, matchWindow, ruleMatches } from '../../src/app/window-rules.js';

const GITHUB: WindowAccount = { keyId: 'k1', keySerial: '1234ABCD', credentialId: 'GitHub:alice', issuer: 'GitHub' };
const TEAMS_WORK: WindowAccount = { keyId: 'k1', keySerial: '1234ABCD', credentialId: 'Microsoft:work', issuer: 'Microsoft' };
const TEAMS_HOME: WindowAccount = { keyId: 'k1', keySerial: '1234ABCD', credentialId: 'Microsoft:home', issuer: 'Microsoft' };
const VPN: WindowAccount = { keyId: 'k1', keySerial: '1234ABCD', credentialId: 'bob', issuer: undefined };
const ACCOUNTS = [GITHUB, TEAMS_WORK, TEAMS_HOME, VPN];

describe('issuer in the title (accounts without rules)', () => {
  it.each([
    ['Sign in to GitHub', true],
    ['GitHub · Sign in — Mozilla Firefox', true],
    ['github.com: sign in', true],
    ['(GITHUB)', true],
    ['GitHubber weekly', false],
    ['MyGitHub', false],
    ['Git Hub', false],
    ['', false],
  ])('"GitHub" in %j: %s', (title, found) => {
    expect(containsWord(title, 'GitHub')).toBe(found);
  });

  it('issuers with spaces, dots and regex characters are taken literally', () => {
    expect(containsWord('Log in – example.com (beta)', 'example.com')).toBe(true);
    expect(containsWord('Log in – exampleXcom', 'example.com')).toBe(false);
    expect(containsWord('Sign in to C++ Forum', 'C++ Forum')).toBe(true);
    expect(containsWord('Ärzte-Portal · Anmelden', 'Ärzte-Portal')).toBe(true);
    expect(containsWord('Ärzte-Portalen', 'Ärzte-Portal')).toBe(false);
  });

  it('one issuer in the title: that account', () => {
    expect(matchWindow({ title: 'Sign in to GitHub — Mozilla Firefox', app: 'firefox' }, ACCOUNTS, [])).toEqual({
      kind: 'one',
      account: { keyId: 'k1', credentialId: 'GitHub:alice' },
      why: 'the issuer "GitHub" in the window\'s title',
    });
  });

  it('two accounts of one issuer: both, in the order found', () => {
    expect(matchWindow({ title: 'Microsoft Teams' }, ACCOUNTS, [])).toEqual({
      kind: 'several',
      accounts: [
        { keyId: 'k1', credentialId: 'Microsoft:work' },
        { keyId: 'k1', credentialId: 'Microsoft:home' },
      ],
      why: 'the issuer "Microsoft" in the window\'s title',
    });
  });

  it('nothing in the title, no window, or a window with neither title nor app: none', () => {
    expect(matchWindow({ title: 'Untitled — Text Editor', app: 'gedit' }, ACCOUNTS, [])).toEqual({ kind: 'none' });
    expect(matchWindow(undefined, ACCOUNTS, [])).toEqual({ kind: 'none' });
    expect(matchWindow({}, ACCOUNTS, [])).toEqual({ kind: 'none' });
    // The application's name is not looked for in issuers: only rules name applications.
    expect(matchWindow({ title: 'Inbox', app: 'GitHub' }, ACCOUNTS, [])).toEqual({ kind: 'none' });
  });

  it('the same name on two keys is one account, read from the preferred key (by id or serial), else the first', () => {
    const backup: WindowAccount = { ...GITHUB, keyId: 'k2', keySerial: '99990000' };
    expect(matchWindow({ title: 'GitHub' }, [GITHUB, backup], [])).toMatchObject({ kind: 'one', account: { keyId: 'k1' } });
    expect(matchWindow({ title: 'GitHub' }, [GITHUB, backup], [], '99990000')).toMatchObject({ kind: 'one', account: { keyId: 'k2' } });
    expect(matchWindow({ title: 'GitHub' }, [GITHUB, backup], [], 'k2')).toMatchObject({ kind: 'one', account: { keyId: 'k2' } });
  });
});

describe('window rules', () => {
  it('title substring, case-insensitive', () => {
    expect(ruleMatches({ credentialId: 'bob', title: 'vpn' }, { title: 'Corporate VPN login' })).toBe(true);
    expect(ruleMatches({ credentialId: 'bob', title: 'vpn' }, { title: 'Corporate login' })).toBe(false);
    expect(ruleMatches({ credentialId: 'bob', title: 'vpn' }, { app: 'vpn' })).toBe(false);
  });

  it('title pattern, case-insensitive; a pattern that does not compile matches nothing', () => {
    expect(ruleMatches({ credentialId: 'bob', titlePattern: '^sign in .* corp$' }, { title: 'Sign in to ACME Corp' })).toBe(true);
    expect(ruleMatches({ credentialId: 'bob', titlePattern: '^sign in .* corp$' }, { title: 'Sign in to ACME Corporation' })).toBe(false);
    expect(ruleMatches({ credentialId: 'bob', titlePattern: 'sign in (' }, { title: 'sign in (' })).toBe(false);
    expect(ruleMatches({ credentialId: 'bob', titlePattern: '.*' }, { app: 'x' })).toBe(false);
  });

  it('application: the whole name, case-insensitive, ".exe" aside', () => {
    expect(ruleMatches({ credentialId: 'bob', app: 'vpn-client' }, { app: 'VPN-Client' })).toBe(true);
    expect(ruleMatches({ credentialId: 'bob', app: 'vpn-client' }, { app: 'vpn-client.exe' })).toBe(true);
    expect(ruleMatches({ credentialId: 'bob', app: 'vpn' }, { app: 'vpn-client' })).toBe(false);
    expect(ruleMatches({ credentialId: 'bob', app: 'vpn' }, { title: 'vpn' })).toBe(false);
  });

  it('every condition given must hold; a rule with none matches nothing', () => {
    const rule: WindowRule = { credentialId: 'Microsoft:work', title: 'Teams', app: 'teams' };
    expect(ruleMatches(rule, { title: 'Microsoft Teams', app: 'teams' })).toBe(true);
    expect(ruleMatches(rule, { title: 'Microsoft Teams', app: 'firefox' })).toBe(false);
    expect(ruleMatches(rule, { title: 'Outlook', app: 'teams' })).toBe(false);
    expect(ruleMatches({ credentialId: 'bob' }, { title: 'x', app: 'y' })).toBe(false);
  });

  it('a matching rule settles it: the issuer is not looked at, and the answer names the rule, not the title', () => {
    const rules: WindowRule[] = [
      { credentialId: 'GitHub:alice', title: 'gist' },
      { credentialId: 'Microsoft:work', title: 'Teams' },
    ];
    const match = matchWindow({ title: 'Microsoft Teams — private chat with Carol' }, ACCOUNTS, rules);
    expect(match).toEqual({ kind: 'one', account: { keyId: 'k1', credentialId: 'Microsoft:work' }, why: 'window rule 2 of the settings' });
    expect(JSON.stringify(match)).not.toContain('Carol');
  });

  it('an account without an issuer is reached by its rule (by application)', () => {
    expect(matchWindow({ title: 'Connect', app: 'vpn-client' }, ACCOUNTS, [{ credentialId: 'bob', app: 'vpn-client' }])).toEqual({
      kind: 'one',
      account: { keyId: 'k1', credentialId: 'bob' },
      why: 'window rule 1 of the settings',
    });
  });

  it('two rules for two accounts match: both', () => {
    const rules: WindowRule[] = [
      { credentialId: 'Microsoft:work', app: 'teams' },
      { credentialId: 'Microsoft:home', app: 'teams' },
    ];
    expect(matchWindow({ title: 'Chat', app: 'teams' }, ACCOUNTS, rules)).toEqual({
      kind: 'several',
      accounts: [
        { keyId: 'k1', credentialId: 'Microsoft:work' },
        { keyId: 'k1', credentialId: 'Microsoft:home' },
      ],
      why: 'window rules 1, 2 of the settings',
    });
  });

  it('an account with rules is not matched by its issuer when none of its rules match', () => {
    const rules: WindowRule[] = [{ credentialId: 'Microsoft:home', app: 'teams-personal' }];
    expect(matchWindow({ title: 'Microsoft Teams', app: 'teams' }, ACCOUNTS, rules)).toEqual({
      kind: 'one',
      account: { keyId: 'k1', credentialId: 'Microsoft:work' },
      why: 'the issuer "Microsoft" in the window\'s title',
    });
  });

  it('a rule for an account on no connected key, or naming another key, is passed over', () => {
    expect(matchWindow({ title: 'Teams' }, ACCOUNTS, [{ credentialId: 'Slack:me', title: 'Teams' }])).toEqual({ kind: 'none' });
    expect(matchWindow({ title: 'Teams' }, ACCOUNTS, [{ keyId: '55556666', credentialId: 'Microsoft:work', title: 'Teams' }])).toEqual({ kind: 'none' });
    expect(matchWindow({ title: 'Teams' }, ACCOUNTS, [{ keyId: '1234abcd', credentialId: 'Microsoft:work', title: 'Teams' }])).toMatchObject({ kind: 'one' });
    expect(matchWindow({ title: 'Teams' }, ACCOUNTS, [{ keyId: 'k1', credentialId: 'Microsoft:work', title: 'Teams' }])).toMatchObject({ kind: 'one' });
  });
});

describe('keytap code --focused (accountForCommand)', () => {
  it('one that fits: it, with why', () => {
    expect(accountForCommand({ title: 'Sign in to GitHub' }, ACCOUNTS, [], null)).toEqual({ keyId: 'k1', credentialId: 'GitHub:alice', why: 'the issuer "GitHub" in the window\'s title' });
  });

  it('several: AMBIGUOUS naming them and how to settle it, not the title', () => {
    let error: unknown;
    try {
      accountForCommand({ title: 'Microsoft Teams — Carol' }, ACCOUNTS, [], null);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({
      code: 'AMBIGUOUS',
      message: '2 accounts fit the focused window (the issuer "Microsoft" in the window\'s title): Microsoft:work, Microsoft:home.',
      hint: 'Add a window rule for it to the settings file (windowRules), or name the account: keytap code QUERY.',
    });
    expect(String((error as Error).message)).not.toContain('Carol');
  });

  it('none: the default account when its key (by id or serial) holds it, else undefined', () => {
    expect(accountForCommand({ title: 'Editor' }, ACCOUNTS, [], { keyId: '1234abcd', credentialId: 'bob' })).toEqual({ keyId: 'k1', credentialId: 'bob', why: 'the default account' });
    expect(accountForCommand(undefined, ACCOUNTS, [], { keyId: 'k1', credentialId: 'bob' })).toMatchObject({ credentialId: 'bob' });
    expect(accountForCommand({ title: 'Editor' }, ACCOUNTS, [], { keyId: 'OTHER', credentialId: 'bob' })).toBeUndefined();
    expect(accountForCommand({ title: 'Editor' }, ACCOUNTS, [], null)).toBeUndefined();
  });
});
