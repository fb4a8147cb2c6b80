/**
 * The per-insertion memory of which PC/SC cards answered SELECT OATH (discovery/oath-cards.ts): an
 * entry matches only the same reader, ATR and event counter; only a yes is kept; a broken file is
 * empty. The effect against a real pcscd (a card held by another program is still listed) is in
 * test/pcsc/pcsc.test.ts.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cardInsertion, knownOathCard, rememberOathCard } from '../../src/device/discovery/oath-cards.js';
import { tempDir } from '../support/cli.js';

const ATR = Uint8Array.from(Buffer.from('3bfc1300008131fe158073c021c0566b657974617022', 'hex'));
let saved: string | undefined;
let dir = '';

beforeEach(() => {
  saved = process.env.KEYTAP_RUNTIME_DIR;
  dir = tempDir('keytap-oath-cards-');
  process.env.KEYTAP_RUNTIME_DIR = dir;
});

afterEach(() => {
  if (saved === undefined) delete process.env.KEYTAP_RUNTIME_DIR;
  else process.env.KEYTAP_RUNTIME_DIR = saved;
});

describe('card insertions', () => {
  it('are told apart by the event counter in the upper 16 bits of the reader state', () => {
    expect(cardInsertion({ name: 'Virtual PCD 00 00', state: (3 << 16) | 0x22, atr: ATR })).toEqual({ reader: 'Virtual PCD 00 00', atr: Buffer.from(ATR).toString('hex'), events: 3 });
    // No counter (a service that keeps none) or no ATR: nothing to recognise the insertion by.
    expect(cardInsertion({ name: 'R', state: 0x22, atr: ATR })).toBeUndefined();
    expect(cardInsertion({ name: 'R', state: (1 << 16) | 0x22, atr: undefined })).toBeUndefined();
  });

  it('remembers a yes, with the identity the card told, for that insertion only', async () => {
    const first = cardInsertion({ name: 'Virtual PCD 00 00', state: (1 << 16) | 0x22, atr: ATR })!;
    expect(await knownOathCard(first)).toBeUndefined();
    await rememberOathCard(first, true, 'serial:0A1B2C3D');
    expect(await knownOathCard(first)).toEqual({ identity: 'serial:0A1B2C3D' });
    // Taken out and put back: the counter moved on.
    expect(await knownOathCard({ ...first, events: 3 })).toBeUndefined();
    // Another card in the same reader, or the same card in another reader.
    expect(await knownOathCard({ ...first, atr: '3b00' })).toBeUndefined();
    expect(await knownOathCard({ ...first, reader: 'Virtual PCD 00 01' })).toBeUndefined();
    expect(JSON.parse(readFileSync(join(dir, 'pcsc-oath-cards.cache'), 'utf8'))).toEqual({ cards: { 'Virtual PCD 00 00': { atr: first.atr, events: 1, identity: 'serial:0A1B2C3D' } } });
    // A yes without an identity (a card whose SELECT told none, or a keytap before identities).
    await rememberOathCard(first, true);
    expect(await knownOathCard(first)).toEqual({ identity: undefined });
  });

  it('forgets a reader whose card says no, and never stores a no', async () => {
    const yes = cardInsertion({ name: 'Reader A', state: (1 << 16) | 0x22, atr: ATR })!;
    await rememberOathCard(yes, true);
    await rememberOathCard({ ...yes, events: 3 }, false);
    expect(await knownOathCard(yes)).toBeUndefined();
    await rememberOathCard({ ...yes, reader: 'Reader B' }, false);
    expect(JSON.parse(readFileSync(join(dir, 'pcsc-oath-cards.cache'), 'utf8'))).toEqual({ cards: {} });
  });

  it('reads a damaged file as empty and writes a good one again', async () => {
    writeFileSync(join(dir, 'pcsc-oath-cards.cache'), '{"cards": {"Reader A": ');
    const insertion = cardInsertion({ name: 'Reader A', state: (2 << 16) | 0x22, atr: ATR })!;
    expect(await knownOathCard(insertion)).toBeUndefined();
    await rememberOathCard(insertion, true);
    expect(await knownOathCard(insertion)).toEqual({ identity: undefined });
  });
});
