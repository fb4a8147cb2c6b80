/**
 * The tray as a pure function of the state and the settings: `buildTrayModel(state, config)`.
 * Backends only render what comes out, and report clicks by item id; `parseMenuId` turns an id
 * back into what the click means. Ids are stable across renders (they name keys and accounts,
 * never positions), so a backend can diff and a click on a menu that was open while the state
 * changed still means the same account.
 */
import type { MenuItem, MenuNode, TrayIconName, TrayModel } from '../tray/model.js';
import type { AppConfig } from './config.js';
import type { AppState, KeyState, StateError } from './state.js';
import { RECENT_MAX, accountKeyRef, accountsCount, deliverFor, isCancel, keyTitle } from './state.js';
import { accountLabel, accountLabelOf } from './account-label.js';

export type MenuAction =
  | { type: 'read'; keyId: string; credentialId: string }
  | { type: 'retry'; keyId: string }
  /** A locked key: ask for its password; remember or forget its access key on this computer. */
  | { type: 'unlock'; keyId: string }
  | { type: 'remember'; keyId: string }
  | { type: 'forget'; keyId: string }
  | { type: 'add-from-qr'; keyId: string }
  | { type: 'cancel' }
  /** Stops an "Add account from QR code on screen…" under way: nothing is added. */
  | { type: 'cancel-qr' }
  | { type: 'default-account'; account: { keyId: string; credentialId: string } | null }
  /** "Type the code": everyone's choice between copying and typing. */
  | { type: 'type-code' }
  /** One account's own choice (the opposite of what it does now). */
  | { type: 'type-code-for'; account: { keyId: string; credentialId: string } }
  /** "Use for this window…": a window rule for the window focused at the last shortcut press. */
  | { type: 'window-rule'; account: { keyId: string; credentialId: string } }
  | { type: 'toggle'; setting: 'showCodeInNotification' | 'notifications' | 'notifyOnConnect' | 'autostart' }
  | { type: 'settings' }
  | { type: 'about' }
  | { type: 'quit' };

export { RECENT_MAX };

/**
 * A key with more accounts than this has them in submenus by issuer: about what a tray menu shows
 * on a laptop screen without scrolling (some hosts cannot scroll a menu at all).
 */
export const GROUP_ABOVE = 15;

/** What the menu may know of the window focused at the last shortcut press: its application only (the title stays out of the menu). */
export interface LastWindow {
  app?: string | undefined;
}

export function buildTrayModel(state: AppState, config: AppConfig, lastWindow?: LastWindow): TrayModel {
  const menu: MenuNode[] = [];
  menu.push(...recentSection(state));
  if (state.keys.length === 0) {
    menu.push({ kind: 'item', id: 'no-key', label: 'No key: plug one in', enabled: false });
  }
  for (const key of state.keys) {
    menu.push(...keySection(state, key));
    menu.push(separator(`sep:key:${encode(key.id)}`));
  }
  if (state.keys.length === 0) menu.push(separator('sep:keys'));

  if (state.pending) {
    menu.push({ kind: 'item', id: 'cancel', label: `Cancel reading ${accountLabelOf(state, state.pending.keyId, state.pending.credentialId)}` }, separator('sep:cancel'));
  }
  if (state.addingFromQr !== undefined) {
    menu.push({ kind: 'item', id: 'cancel-qr', label: 'Cancel adding an account from a QR code' }, separator('sep:cancel-qr'));
  }

  menu.push(defaultAccountMenu(state, config));
  if (lastWindow) menu.push(...windowRuleItems(state, lastWindow));
  menu.push(...typeCodeItems(state, config));
  menu.push(toggle('toggle:showCodeInNotification', 'Show code in notification', config.showCodeInNotification, config.notifications));
  menu.push(toggle('toggle:notifications', 'Notifications', config.notifications));
  menu.push(toggle('toggle:notifyOnConnect', 'Notify when a key is connected', config.notifyOnConnect, config.notifications));
  menu.push(toggle('toggle:autostart', 'Start at login', state.autostart === true, state.autostart !== undefined));
  menu.push(separator('sep:settings'));
  menu.push({ kind: 'item', id: 'settings', label: 'Settings…' });
  menu.push({ kind: 'item', id: 'about', label: 'About keytap' });
  menu.push({ kind: 'item', id: 'quit', label: 'Quit' });

  return { icon: iconFor(state), tooltip: tooltipFor(state), menu };
}

export function iconFor(state: AppState): TrayIconName {
  if (state.pending?.phase === 'touch') return 'touch';
  if (state.keys.some((k) => k.status === 'error') || failedRead(state)) return 'error';
  if (state.keys.length === 0) return 'idle';
  return 'key';
}

export function tooltipFor(state: AppState): string {
  if (state.pending?.phase === 'touch') return `keytap: touch your key (${accountLabelOf(state, state.pending.keyId, state.pending.credentialId)})`;
  if (state.pending) return `keytap: reading ${accountLabelOf(state, state.pending.keyId, state.pending.credentialId)}…`;
  const failed = failedRead(state);
  if (failed) return `keytap: ${failed.message}`;
  const broken = state.keys.find((k) => k.status === 'error');
  if (broken?.error) return `keytap: ${broken.name}: ${broken.error.message}`;
  if (state.keys.length === 0) return 'keytap: no key';
  return `keytap: ${state.keys.map((k) => `${k.name}${k.status === 'ready' ? `, ${accountsCount(k.credentials.length)}` : k.status === 'locked' ? ', locked' : ''}`).join('; ')}`;
}

/** The error of the last read, unless it was a deliberate cancel. */
function failedRead(state: AppState): StateError | undefined {
  return state.last?.ok === false && !isCancel(state.last.error) ? state.last.error : undefined;
}

function keySection(state: AppState, key: KeyState): MenuNode[] {
  const k = encode(key.id);
  const nodes: MenuNode[] = [{ kind: 'item', id: `key:${k}`, label: keyTitle(key), enabled: false }];
  switch (key.status) {
    case 'loading':
      nodes.push({ kind: 'item', id: `status:${k}`, label: 'Reading accounts…', enabled: false });
      break;
    case 'locked':
      nodes.push({ kind: 'item', id: `status:${k}`, label: 'Locked with a password', enabled: false });
      nodes.push({ kind: 'item', id: `unlock:${k}`, label: 'Unlock…' });
      break;
    case 'error':
      nodes.push({ kind: 'item', id: `status:${k}`, label: `Cannot read: ${key.error?.message ?? 'unknown error'}`, enabled: false });
      if (key.error?.hint) nodes.push({ kind: 'item', id: `hint:${k}`, label: key.error.hint, enabled: false });
      nodes.push({ kind: 'item', id: `retry:${k}`, label: 'Try again' });
      break;
    case 'ready':
      if (key.credentials.length === 0) {
        nodes.push({ kind: 'item', id: `status:${k}`, label: 'No accounts: add one with "keytap add"', enabled: false });
      }
      if (key.credentials.length > GROUP_ABOVE) nodes.push(...issuerGroups(state, key));
      else nodes.push(...key.credentials.map((credential) => accountItem(state, key, credential)));
      if (key.pinLocked) nodes.push({ kind: 'item', id: `unlock:${k}`, label: 'Unlock PIN-protected accounts…' });
      if (key.secret === 'held' && key.canRemember) nodes.push({ kind: 'item', id: `remember:${k}`, label: 'Remember on this computer' });
      if (key.secret === 'remembered') nodes.push({ kind: 'item', id: `forget:${k}`, label: 'Forget on this computer' });
      nodes.push({ kind: 'item', id: `qr:${k}`, label: 'Add account from QR code on screen…' });
      break;
  }
  return nodes;
}

function accountItem(state: AppState, key: KeyState, credential: KeyState['credentials'][number]): MenuItem {
  const pending = state.pending && state.pending.keyId === key.id && state.pending.credentialId === credential.id ? state.pending : undefined;
  const suffix = pending ? (pending.phase === 'touch' ? ': touch your key…' : ': reading…') : '';
  return { kind: 'item', id: `code:${encode(key.id)}:${encode(credential.id)}`, label: `${accountLabel(credential)}${suffix}`, enabled: state.pending === undefined };
}

/**
 * One submenu per issuer, ignoring case ("GitHub" and "github" are one, named as first spelled),
 * sorted ignoring case; accounts without an issuer under "Other", last.
 */
function issuerGroups(state: AppState, key: KeyState): MenuItem[] {
  const groups = new Map<string, { issuer: string; credentials: KeyState['credentials'] }>();
  for (const credential of key.credentials) {
    const issuer = credential.issuer ?? '';
    const group = groups.get(issuer.toLowerCase());
    if (group) group.credentials.push(credential);
    else groups.set(issuer.toLowerCase(), { issuer, credentials: [credential] });
  }
  const sorted = [...groups.values()].filter((g) => g.issuer !== '').sort((a, b) => a.issuer.localeCompare(b.issuer, undefined, { sensitivity: 'base' }));
  const other = groups.get('');
  if (other) sorted.push(other);
  return sorted.map(({ issuer, credentials }) => ({
    kind: 'item',
    id: `issuer:${encode(key.id)}:${encode(issuer.toLowerCase())}`,
    label: `${issuer === '' ? 'Other' : issuer} (${credentials.length})`,
    children: credentials.map((credential) => accountItem(state, key, credential)),
  }));
}

/**
 * The accounts read lately, across keys. One that cannot be read now is shown disabled with the
 * reason that is true: its key is locked, still loading (a key whose serial is not known yet may
 * be it), cannot be read, or is not connected. An account its key no longer holds is left out.
 */
function recentSection(state: AppState): MenuNode[] {
  const recent = (state.recent ?? []).slice(0, RECENT_MAX);
  const nodes: MenuNode[] = [];
  for (const r of recent) {
    const key = state.keys.find((k) => accountKeyRef(k) === r.keyId || k.id === r.keyId);
    const credential = key?.status === 'ready' ? key.credentials.find((c) => c.id === r.credentialId) : undefined;
    if (key && credential) {
      const label = state.keys.length > 1 ? `${accountLabel(credential)}, on ${keyTitle(key)}` : accountLabel(credential);
      nodes.push({ kind: 'item', id: `recent:${encode(key.id)}:${encode(credential.id)}`, label, enabled: state.pending === undefined });
      continue;
    }
    const why = recentAwayReason(state, key);
    if (why === undefined) continue;
    nodes.push({ kind: 'item', id: `recent-away:${encode(r.keyId)}:${encode(r.credentialId)}`, label: `${accountLabelOf(state, undefined, r.credentialId)} (${why})`, enabled: false });
  }
  if (nodes.length === 0) return [];
  return [{ kind: 'item', id: 'recent', label: 'Recent', enabled: false }, ...nodes, separator('sep:recent')];
}

/** Why a recent account cannot be read now; undefined when its key is here, ready, and no longer holds it. */
function recentAwayReason(state: AppState, key: KeyState | undefined): string | undefined {
  if (!key) return state.keys.some((k) => k.status === 'loading' && k.serial === undefined) ? 'loading' : 'key not connected';
  switch (key.status) {
    case 'loading':
      return 'loading';
    case 'locked':
      return 'locked';
    case 'error':
      return 'cannot read the key';
    case 'ready':
      // PIN-protected accounts are listed only once the PIN is given.
      return key.pinLocked ? 'locked' : undefined;
  }
}

function defaultAccountMenu(state: AppState, config: AppConfig): MenuItem {
  const chosen = config.defaultAccount;
  const children: MenuNode[] = [{ kind: 'item', id: 'default:auto', label: 'The only account (when there is just one)', toggle: 'radio', checked: chosen === null }];
  let chosenShown = chosen === null;
  const ready = state.keys.filter((k) => k.status === 'ready' && k.credentials.length > 0);
  for (const key of ready) {
    const ref = accountKeyRef(key);
    for (const credential of key.credentials) {
      const checked = chosen !== null && chosen.keyId === ref && chosen.credentialId === credential.id;
      chosenShown ||= checked;
      children.push({
        kind: 'item',
        id: `default:${encode(ref)}:${encode(credential.id)}`,
        label: ready.length > 1 ? `${accountLabel(credential)}, on ${keyTitle(key)}` : accountLabel(credential),
        toggle: 'radio',
        checked,
      });
    }
  }
  if (chosen !== null && !chosenShown) {
    // Keep the saved choice visible while its key is away, so nobody wonders where it went.
    children.push({
      kind: 'item',
      id: `default:${encode(chosen.keyId)}:${encode(chosen.credentialId)}`,
      label: `${accountLabelOf(state, undefined, chosen.credentialId)} (key not connected)`,
      toggle: 'radio',
      checked: true,
      enabled: false,
    });
  }
  const shortcut = state.shortcut === 'unavailable' ? 'shortcut unavailable: bind "keytap code"' : config.shortcut;
  return { kind: 'item', id: 'default', label: `Default account for the shortcut (${shortcut})`, children };
}

/**
 * "Type the code" (everyone's choice; checked when codes are typed, with or without a copy) and,
 * with accounts to show, "Type the code of…", one checkmark per account (its own choice, or
 * everyone's). A choice of "both" is made in the settings file; the checkmarks show it as typed.
 */
function typeCodeItems(state: AppState, config: AppConfig): MenuNode[] {
  const typeShortcut = state.shortcut === 'registered' && state.typeShortcutRegistered !== false ? ` (${config.typeShortcut} always types)` : '';
  const items: MenuNode[] = [toggle('type-code', `Type the code${config.deliver === 'both' ? ' and copy it' : ''}${typeShortcut}`, config.deliver !== 'copy')];
  const ready = state.keys.filter((k) => k.status === 'ready' && k.credentials.length > 0);
  const children: MenuNode[] = [];
  for (const key of ready) {
    const ref = accountKeyRef(key);
    for (const credential of key.credentials) {
      const deliver = deliverFor(config, key, credential.id);
      children.push(toggle(`type-for:${encode(ref)}:${encode(credential.id)}`, ready.length > 1 ? `${accountLabel(credential)}, on ${keyTitle(key)}` : accountLabel(credential), deliver !== 'copy'));
    }
  }
  if (children.length > 0) items.push({ kind: 'item', id: 'type-for', label: 'Type the code of…', children });
  return items;
}

/**
 * "Use for this window…": one item per account; a click makes the window focused at the last
 * shortcut press read that account from then on (a window rule with its title and application).
 */
function windowRuleItems(state: AppState, lastWindow: LastWindow): MenuNode[] {
  const ready = state.keys.filter((k) => k.status === 'ready' && k.credentials.length > 0);
  const children: MenuNode[] = [];
  for (const key of ready) {
    const ref = accountKeyRef(key);
    for (const credential of key.credentials) {
      children.push({ kind: 'item', id: `window-rule:${encode(ref)}:${encode(credential.id)}`, label: ready.length > 1 ? `${accountLabel(credential)}, on ${keyTitle(key)}` : accountLabel(credential) });
    }
  }
  if (children.length === 0) return [];
  const which = lastWindow.app ? ` (${lastWindow.app}, focused at the last shortcut)` : ' (focused at the last shortcut)';
  return [{ kind: 'item', id: 'window-rule', label: `Use for this window${which}…`, children }];
}

export function parseMenuId(id: string): MenuAction | undefined {
  const [head, ...rest] = id.split(':');
  const parts = rest.map(decode);
  switch (head) {
    case 'code':
    case 'recent':
      return parts.length === 2 && parts[0] && parts[1] ? { type: 'read', keyId: parts[0], credentialId: parts[1] } : undefined;
    case 'retry':
    case 'unlock':
    case 'remember':
    case 'forget':
      return parts.length === 1 && parts[0] ? { type: head, keyId: parts[0] } : undefined;
    case 'qr':
      return parts.length === 1 && parts[0] ? { type: 'add-from-qr', keyId: parts[0] } : undefined;
    case 'cancel':
      return { type: 'cancel' };
    case 'cancel-qr':
      return parts.length === 0 ? { type: 'cancel-qr' } : undefined;
    case 'default':
      if (parts.length === 1 && parts[0] === 'auto') return { type: 'default-account', account: null };
      return parts.length === 2 && parts[0] && parts[1] ? { type: 'default-account', account: { keyId: parts[0], credentialId: parts[1] } } : undefined;
    case 'type-code':
      return parts.length === 0 ? { type: 'type-code' } : undefined;
    case 'type-for':
      return parts.length === 2 && parts[0] && parts[1] ? { type: 'type-code-for', account: { keyId: parts[0], credentialId: parts[1] } } : undefined;
    case 'window-rule':
      return parts.length === 2 && parts[0] && parts[1] ? { type: 'window-rule', account: { keyId: parts[0], credentialId: parts[1] } } : undefined;
    case 'toggle': {
      const setting = parts[0];
      return setting === 'showCodeInNotification' || setting === 'notifications' || setting === 'notifyOnConnect' || setting === 'autostart'
        ? { type: 'toggle', setting }
        : undefined;
    }
    case 'settings':
    case 'about':
    case 'quit':
      return { type: head };
    default:
      return undefined;
  }
}

/** Key ids are paths and credential ids contain ':' and '/': percent-encode them inside an id. */
function encode(part: string): string {
  return encodeURIComponent(part);
}

function decode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return '';
  }
}

function toggle(id: string, label: string, checked: boolean, enabled = true): MenuItem {
  return { kind: 'item', id, label, toggle: 'checkmark', checked, enabled };
}

function separator(id: string): MenuNode {
  return { kind: 'separator', id };
}
