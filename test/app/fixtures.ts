/** Shared test data for the app tests: credentials, settings, and state builders. */
import type { AppConfig } from '../../src/app/config.js';
import { DEFAULT_CONFIG } from '../../src/app/config.js';
import type { AppEvent, AppState, Effect, StateSettings } from '../../src/app/state.js';
import { INITIAL_STATE, reduce } from '../../src/app/state.js';
import type { KeyCredential } from '../../src/device/oath/session.js';

export const TOTP: KeyCredential = { id: 'Demo:alice', issuer: 'Demo', account: 'alice', type: 'TOTP', algorithm: 'SHA1', period: 30, digits: 6, touch: false };
export const TOUCH: KeyCredential = { id: 'GitHub:alice', issuer: 'GitHub', account: 'alice', type: 'TOTP', algorithm: 'SHA256', period: 30, digits: 6, touch: true };
export const HOTP: KeyCredential = { id: 'VPN:alice', issuer: 'VPN', account: 'alice', type: 'HOTP', algorithm: 'SHA1', period: 30, digits: 6 };
export const BANK60: KeyCredential = { id: '60/Bank:alice', issuer: 'Bank', account: 'alice', type: 'TOTP', algorithm: 'SHA1', period: 60, digits: 8, touch: false };

export const SETTINGS: StateSettings = {
  notifications: true,
  notifyOnConnect: true,
  showCodeInNotification: false,
  touchTimeoutSeconds: 30,
  clipboardClearSeconds: 20,
};

export const CONFIG: AppConfig = { ...DEFAULT_CONFIG };

/** Runs events from the initial state; returns the final state and every effect, in order. */
export function run(events: AppEvent[], settings: StateSettings = SETTINGS, from: AppState = INITIAL_STATE): { state: AppState; effects: Effect[]; last: Effect[] } {
  let state = from;
  const effects: Effect[] = [];
  let last: Effect[] = [];
  for (const event of events) {
    const t = reduce(state, event, settings);
    state = t.state;
    last = t.effects;
    effects.push(...t.effects);
  }
  return { state, effects, last };
}

export function added(id: string, name = 'Nitrokey 3', kind: 'hid' | 'virtual' = 'hid'): AppEvent {
  return { type: 'key-added', key: { id, name, kind } };
}

export function loaded(keyId: string, credentials: KeyCredential[], serial?: string): AppEvent {
  return { type: 'key-loaded', keyId, serial, locked: false, credentials };
}

/** A ready key "k1" (serial 1234ABCD) holding these credentials. */
export function readyState(credentials: KeyCredential[] = [TOTP, TOUCH, HOTP], keyId = 'k1'): AppState {
  return run([added(keyId), loaded(keyId, credentials, '1234ABCD')]).state;
}
