/**
 * The tray's per-key operations on locked keys (src/app/key-operations.ts), with a fake key, keyring
 * and prompt: which keyring entry a key's secret is filed under, what a wrong remembered or held
 * PIN costs, and what happens to an open prompt when the key goes.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KeyOperations } from '../../src/app/key-operations.js';
import type { KeySession, OpenedKey } from '../../src/app/key-session.js';
import type { Clock, Logger } from '../../src/app/logger.js';
import type { AppEvent } from '../../src/app/state.js';
import type { Keyring, SecretKind } from '../../src/desktop/keyring/index.js';
import type { SecretPrompt, SecretRequest } from '../../src/desktop/secret-prompt/index.js';
import type { KeyDescriptor } from '../../src/device/discovery/enumerate.js';
import type { KeyCredential } from '../../src/device/oath/session.js';
import { KeytapError } from '../../src/errors.js';
import { keyOverOne } from '../support/key-descriptor.js';

const OPEN: KeyCredential = { id: 'open', account: 'open', type: 'TOTP', algorithm: 'SHA1', period: 30, digits: 6 };
const PINNED: KeyCredential = { id: 'Vault:pinned', issuer: 'Vault', account: 'pinned', type: 'TOTP', algorithm: 'SHA1', period: 30, digits: 6, pinProtected: true };

/** A fake key: a YubiKey with a password (`accessKey`) or a Nitrokey 3 with a PIN (`pin`). */
class FakeKey {
  serial: string | undefined;
  deviceId: string | undefined;
  accessKey: Buffer | undefined;
  pin: string | undefined;
  /** The Nitrokey's counter; it goes down with every wrong VERIFY PIN. */
  attemptsLeft = 8;
  /** A fake whose counter never moves (a key that does not count, to see keytap's own memory). */
  fixedCounter = false;
  verifies: string[] = [];
  /** Each VERIFY PIN: whether someone was told to touch before it. */
  touchAnnounced: boolean[] = [];
  accessKeysTried: Buffer[] = [];
  /** Each CALCULATE: the PIN it was given. */
  calculatePins: (string | undefined)[] = [];

  session(): KeySession {
    let locked = this.accessKey !== undefined;
    const verify = (pin: string, options?: { onTouchNeeded?: (() => void) | undefined }): void => {
      let announced = false;
      options?.onTouchNeeded?.();
      if (options?.onTouchNeeded) announced = true;
      this.touchAnnounced.push(announced);
      this.verifies.push(pin);
      if (pin !== this.pin) {
        if (!this.fixedCounter) this.attemptsLeft -= 1;
        throw new KeytapError('WRONG_PASSWORD', `The PIN is wrong (${this.attemptsLeft} attempts left).`, { detail: { kind: 'wrong-pin', attemptsLeft: this.attemptsLeft } });
      }
    };
    const session: KeySession = {
      get locked() {
        return locked;
      },
      serial: this.serial,
      deviceId: this.deviceId,
      pinSet: this.pin !== undefined,
      pinAttemptsLeft: this.pin !== undefined ? this.attemptsLeft : undefined,
      list: () => Promise.resolve([OPEN]),
      deriveAccessKey: this.accessKey ? (password: string) => createHash('sha256').update(password).digest().subarray(0, 16) : undefined,
      unlockWithAccessKey: this.accessKey
        ? (key: Uint8Array) => {
            this.accessKeysTried.push(Buffer.from(key));
            if (!Buffer.from(key).equals(this.accessKey!)) return Promise.reject(new KeytapError('WRONG_PASSWORD', 'Wrong password.', { detail: { kind: 'wrong-password' } }));
            locked = false;
            return Promise.resolve();
          }
        : undefined,
      listWithPin: this.pin !== undefined
        ? async (pin: string, options?: { signal?: AbortSignal | undefined; onTouchNeeded?: (() => void) | undefined }) => {
            await Promise.resolve();
            verify(pin, options);
            return [OPEN, PINNED];
          }
        : undefined,
      calculate: async (credential, options) => {
        await Promise.resolve();
        this.calculatePins.push(options?.pin);
        if (credential.pinProtected) verify(options?.pin ?? '', options);
        return { code: '123456', digits: 6 };
      },
    };
    return session;
  }
}

class FakeKeyring implements Keyring {
  readonly name = 'Secret Service';
  entries = new Map<string, string>();
  gets: string[] = [];
  failDelete = false;
  get(keyId: string, kind: SecretKind): Promise<string | undefined> {
    this.gets.push(`${keyId}/${kind}`);
    return Promise.resolve(this.entries.get(`${keyId}/${kind}`));
  }
  set(keyId: string, kind: SecretKind, secret: string): Promise<void> {
    this.entries.set(`${keyId}/${kind}`, secret);
    return Promise.resolve();
  }
  delete(keyId: string, kind: SecretKind): Promise<boolean> {
    if (this.failDelete) return Promise.reject(new KeytapError('UNSUPPORTED', 'The keyring of this computer cannot be used: locked.', { detail: { kind: 'no-keyring', reason: 'locked' } }));
    return Promise.resolve(this.entries.delete(`${keyId}/${kind}`));
  }
}

/** A prompt that answers from a list; 'hang' waits until its signal aborts. */
class FakePrompt implements SecretPrompt {
  readonly name = 'fake pinentry';
  requests: SecretRequest[] = [];
  aborted = 0;
  constructor(private readonly answers: string[]) {}
  ask(request: SecretRequest, signal?: AbortSignal): Promise<string> {
    this.requests.push(request);
    const answer = this.answers.shift();
    if (answer === 'hang') {
      return new Promise((_resolve, reject) => {
        const stop = (): void => {
          this.aborted += 1;
          reject(new KeytapError('CANCELLED', 'The question was cancelled.'));
        };
        if (signal?.aborted) stop();
        else signal?.addEventListener('abort', stop, { once: true });
      });
    }
    if (answer === undefined) return Promise.reject(new KeytapError('CANCELLED', 'The question was cancelled.'));
    return Promise.resolve(answer);
  }
}

const clock: Clock = {
  now: () => Date.now(),
  setTimeout: (run, ms) => setTimeout(run, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

function descriptorOf(id: string): KeyDescriptor {
  return keyOverOne({ id, kind: 'hid', name: 'Nitrokey 3', path: `/dev/hidraw-${id}`, open: () => Promise.reject(new Error('not used')) });
}

function setUp(key: FakeKey, options: { keyring?: FakeKeyring; prompt?: FakePrompt } = {}) {
  const events: AppEvent[] = [];
  const logs: string[] = [];
  const logger: Logger = { info: (m) => logs.push(m), warn: (m) => logs.push(m), error: (m) => logs.push(m) };
  const plugged = new Set<string>();
  const operations = new KeyOperations({
    open: (descriptor): Promise<OpenedKey> => Promise.resolve({ session: key.session(), name: 'Nitrokey 3', id: key.serial ?? descriptor.id, close: () => Promise.resolve() }),
    clock,
    logger,
    report: (event) => events.push(event),
    hasKey: (id) => plugged.has(id),
    onTouchNeeded: () => undefined,
    keyring: options.keyring,
    prompt: options.prompt ? () => options.prompt! : undefined,
  });
  const descriptor = descriptorOf('hid-1');
  const plug = (): void => {
    plugged.add(descriptor.id);
    operations.added(descriptor);
  };
  const unplug = (): void => {
    plugged.delete(descriptor.id);
    operations.removed(descriptor);
  };
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 5; i++) {
      await Promise.all(operations.inFlight());
      await new Promise((r) => setImmediate(r));
    }
  };
  return { operations, events, logs, descriptor, plug, unplug, settle };
}

function loaded(events: AppEvent[]): Extract<AppEvent, { type: 'key-loaded' }>[] {
  return events.filter((e): e is Extract<AppEvent, { type: 'key-loaded' }> => e.type === 'key-loaded');
}

describe('the keyring entry a key is filed under', () => {
  it('a locked YubiKey that tells no serial and no OATH device id: the keyring is not read under its descriptor id, and "Remember" is not offered', async () => {
    const key = new FakeKey();
    key.accessKey = createHash('sha256').update('pw').digest().subarray(0, 16);
    const keyring = new FakeKeyring();
    keyring.entries.set('hid-1/access-key', key.accessKey.toString('hex'));
    const t = setUp(key, { keyring, prompt: new FakePrompt(['pw']) });
    t.plug();
    t.operations.load('hid-1');
    await t.settle();
    expect(keyring.gets).toEqual([]);
    expect(loaded(t.events).at(-1)).toMatchObject({ locked: true });
    t.operations.unlock('hid-1');
    await t.settle();
    expect(loaded(t.events).at(-1)).toMatchObject({ locked: false, secret: 'held', canRemember: false });
    t.operations.setRemembered('hid-1', true);
    await t.settle();
    expect(keyring.entries.size).toBe(1);
    expect(t.events.at(-1)).toMatchObject({ type: 'secret-changed', secret: 'held', error: { code: 'UNSUPPORTED' } });
  });

  it('without a serial, the OATH device id names it ("oath-" and Base64url)', async () => {
    const key = new FakeKey();
    key.deviceId = 'ab+/cd';
    key.accessKey = createHash('sha256').update('pw').digest().subarray(0, 16);
    const keyring = new FakeKeyring();
    const t = setUp(key, { keyring, prompt: new FakePrompt(['pw']) });
    t.plug();
    t.operations.unlock('hid-1');
    await t.settle();
    expect(loaded(t.events).at(-1)).toMatchObject({ canRemember: true });
    t.operations.setRemembered('hid-1', true);
    await t.settle();
    expect([...keyring.entries.keys()]).toEqual(['oath-ab-_cd/access-key']);
  });

  it('with a serial, the serial', async () => {
    const key = new FakeKey();
    key.serial = '1a2b3c4d';
    key.deviceId = 'ignored';
    key.pin = '1234';
    const keyring = new FakeKeyring();
    keyring.entries.set('1a2b3c4d/nk3-pin', '1234');
    const t = setUp(key, { keyring });
    t.plug();
    t.operations.load('hid-1');
    await t.settle();
    expect(keyring.gets).toEqual(['1a2b3c4d/nk3-pin']);
    expect(loaded(t.events).at(-1)!.credentials.map((c) => c.id)).toEqual(['open', 'Vault:pinned']);
  });
});

function nitrokey(rememberedPin: string, rightPin = '1234'): { key: FakeKey; keyring: FakeKeyring } {
  const key = new FakeKey();
  key.serial = '1a2b3c4d';
  key.pin = rightPin;
  const keyring = new FakeKeyring();
  keyring.entries.set('1a2b3c4d/nk3-pin', rememberedPin);
  return { key, keyring };
}

describe('a wrong remembered Nitrokey 3 PIN costs one attempt at most, ever', () => {
  it('its keyring entry cannot be deleted: a replugged key (counter still full) is not given it again', async () => {
    const { key, keyring } = nitrokey('9999');
    key.fixedCounter = true;
    keyring.failDelete = true;
    const t = setUp(key, { keyring });
    t.plug();
    t.operations.load('hid-1');
    await t.settle();
    expect(key.verifies).toEqual(['9999']);
    expect(t.events.filter((e) => e.type === 'remembered-wrong')).toHaveLength(1);
    t.unplug();
    t.plug();
    t.operations.load('hid-1');
    await t.settle();
    expect(key.verifies).toEqual(['9999']);
    expect(loaded(t.events).at(-1)).toMatchObject({ pinLocked: true });
    // Stored anew (another value under the same entry): that one is tried.
    keyring.entries.set('1a2b3c4d/nk3-pin', '1234');
    t.operations.load('hid-1');
    await t.settle();
    expect(key.verifies).toEqual(['9999', '1234']);
    expect(t.logs.join('\n')).not.toContain('9999');
  });

  it('the key says a wrong PIN was given (fewer than 8 attempts left): the remembered PIN is not tried at all', async () => {
    const { key, keyring } = nitrokey('1234');
    key.attemptsLeft = 7;
    const t = setUp(key, { keyring });
    t.plug();
    t.operations.load('hid-1');
    await t.settle();
    expect(key.verifies).toEqual([]);
    expect(loaded(t.events).at(-1)).toMatchObject({ pinLocked: true });
    expect(t.logs.join('\n')).toMatch(/PIN remembered for Nitrokey 3 was not tried: the key says a wrong PIN was entered since it last worked \(7 attempts left\)/u);
  });

  it('"Unlock PIN-protected accounts…" then asks, and says why the remembered PIN was not used', async () => {
    const { key, keyring } = nitrokey('1234');
    key.attemptsLeft = 7;
    const prompt = new FakePrompt(['1234']);
    const t = setUp(key, { keyring, prompt });
    t.plug();
    t.operations.unlock('hid-1');
    await t.settle();
    expect(key.verifies).toEqual(['1234']);
    expect(prompt.requests).toHaveLength(1);
    expect(prompt.requests[0]!.error).toBe('The remembered PIN was not tried: a wrong PIN was entered since it last worked.');
    expect(prompt.requests[0]!.description).toContain('(7 attempts left)');
  });

  it('with one attempt left the prompt says the next wrong PIN blocks the key', async () => {
    const key = new FakeKey();
    key.serial = '1a2b3c4d';
    key.pin = '1234';
    key.attemptsLeft = 1;
    const prompt = new FakePrompt([]);
    const t = setUp(key, { prompt });
    t.plug();
    t.operations.unlock('hid-1');
    await t.settle();
    expect(prompt.requests[0]!.description).toMatch(/\(1 attempt left\).*The next wrong PIN blocks the key/u);
  });
});

describe('a held PIN the key refuses', () => {
  it('is dropped after the failed read, and the key shows PIN-locked again ("Unlock PIN-protected accounts…")', async () => {
    const key = new FakeKey();
    key.serial = '1a2b3c4d';
    key.pin = '1234';
    const t = setUp(key, { prompt: new FakePrompt(['1234']) });
    t.plug();
    t.operations.unlock('hid-1');
    await t.settle();
    expect(loaded(t.events).at(-1)).toMatchObject({ secret: 'held' });
    // Changed elsewhere (nitropy) while plugged in.
    key.pin = '5678';
    t.operations.read(1, 'hid-1', PINNED, Date.now() / 1000);
    await t.settle();
    expect(t.events.find((e) => e.type === 'read-failed')).toMatchObject({ error: { code: 'WRONG_PASSWORD' } });
    expect(loaded(t.events).at(-1)).toMatchObject({ pinLocked: true });
    expect(loaded(t.events).at(-1)!.credentials.map((c) => c.id)).toEqual(['open']);
    t.operations.read(2, 'hid-1', PINNED, Date.now() / 1000);
    await t.settle();
    expect(key.calculatePins).toEqual(['1234', undefined]);
  });
});

describe('an open prompt when the key goes or the tray quits', () => {
  function lockedYubiKey(): FakeKey {
    const key = new FakeKey();
    key.serial = '123456';
    key.accessKey = createHash('sha256').update('pw').digest().subarray(0, 16);
    return key;
  }

  it('unplugging the key withdraws the question (the prompt sees its signal abort) and the queue drains', async () => {
    const prompt = new FakePrompt(['hang']);
    const t = setUp(lockedYubiKey(), { prompt });
    t.plug();
    t.operations.unlock('hid-1');
    await new Promise((r) => setImmediate(r));
    expect(prompt.requests).toHaveLength(1);
    t.unplug();
    await t.settle();
    expect(prompt.aborted).toBe(1);
    expect(t.events.filter((e) => e.type === 'unlock-failed')).toEqual([]);
  });

  it('quitting withdraws it too, and stop() resolves', async () => {
    const prompt = new FakePrompt(['hang']);
    const t = setUp(lockedYubiKey(), { prompt });
    t.plug();
    t.operations.unlock('hid-1');
    await new Promise((r) => setImmediate(r));
    await t.operations.stop();
    expect(prompt.aborted).toBe(1);
    expect(t.events.find((e) => e.type === 'unlock-failed')).toMatchObject({ error: { code: 'CANCELLED' } });
  });

  it('a key plugged in again gets a fresh signal: it can be unlocked', async () => {
    const prompt = new FakePrompt(['hang', 'pw']);
    const t = setUp(lockedYubiKey(), { prompt });
    t.plug();
    t.operations.unlock('hid-1');
    await new Promise((r) => setImmediate(r));
    t.unplug();
    await t.settle();
    t.plug();
    t.operations.unlock('hid-1');
    await t.settle();
    expect(loaded(t.events).at(-1)).toMatchObject({ locked: false, secret: 'held' });
  });
});

describe('the touch a remembered PIN costs on load', () => {
  it('VERIFY PIN (which always waits for a touch) is announced: key-touch-needed before the listing', async () => {
    const { key, keyring } = nitrokey('1234');
    const t = setUp(key, { keyring });
    t.plug();
    t.operations.load('hid-1');
    await t.settle();
    expect(key.touchAnnounced).toEqual([true]);
    const types = t.events.map((e) => e.type);
    expect(types).toEqual(['key-touch-needed', 'key-loaded']);
  });
});

describe('a wrong remembered access key whose entry cannot be deleted', () => {
  it('is tried once while the tray runs, not on every replug', async () => {
    const key = new FakeKey();
    key.serial = '123456';
    key.accessKey = createHash('sha256').update('pw').digest().subarray(0, 16);
    const keyring = new FakeKeyring();
    keyring.entries.set('123456/access-key', '00'.repeat(16));
    keyring.failDelete = true;
    const t = setUp(key, { keyring });
    for (let i = 0; i < 2; i++) {
      t.plug();
      t.operations.load('hid-1');
      await t.settle();
      t.unplug();
    }
    expect(key.accessKeysTried).toHaveLength(1);
    expect(t.events.filter((e) => e.type === 'remembered-wrong')).toHaveLength(1);
  });
});
