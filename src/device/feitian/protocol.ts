/**
 * The Feitian/HyperFIDO HOTP programming protocol (docs/protocols.md §4), as far as it is public:
 * raw ISO 7816 APDUs in U2FHID MSG frames, reverse-engineered by the open-source hyperhotp tool
 * (casept/hyperhotp, src/core/hyperhotp.c). Pure: the APDUs, and what their answers mean. Shared by
 * the client session (session.ts) and the virtual key's third dialect (src/emulator/feitian-applet.ts),
 * so that the two cannot drift apart.
 *
 * Nobody outside Feitian has documented this protocol. Every fact below that hyperhotp's source does
 * not state outright is marked [inferred]; none of it has been checked against a physical key by
 * keytap's authors.
 */

/**
 * The vendor application hyperhotp selects before every operation (its "magic" packet). RID
 * D1 56 00 01 32: "D" + 156 is a national (China) registration [inferred; consistent with Feitian].
 */
export const FEITIAN_HOTP_AID = Uint8Array.of(0xd1, 0x56, 0x00, 0x01, 0x32, 0x83, 0x26, 0x01, 0x01);

export const FeitianIns = {
  SELECT: 0xa4,
  /** Reads whether the key is programmed, and its token serial when it is. */
  CHECK: 0xe6,
  /** Erases the HOTP token; the key flashes and waits for a touch. */
  ERASE: 0x07,
  /** Programs the HOTP token (only on an erased key); the key flashes and waits for a touch. */
  PROGRAM: 0x09,
} as const;

/** The only algorithm, seed length and digit counts the PROGRAM data can say. */
export const FEITIAN_SEED_BYTES = 20;
export const FEITIAN_SERIAL_LENGTH = 8;
export const FEITIAN_DIGITS: readonly number[] = [6, 8];
/** No counter is sent, so the key presumably starts at 0 [inferred]. */
export const FEITIAN_FIRST_COUNTER = 0;

/** The serial is written as ASCII; hyperhotp's man page calls it an "8-digit decimal serial". Printable ASCII is what we allow. */
const SERIAL_PATTERN = /^[\x21-\x7e]{8}$/u;

export function isFeitianSerial(serial: string): boolean {
  return SERIAL_PATTERN.test(serial);
}

export const selectApdu = (): Uint8Array => Uint8Array.of(0x00, FeitianIns.SELECT, 0x04, 0x00, FEITIAN_HOTP_AID.length, ...FEITIAN_HOTP_AID);
/** No Lc, no Le: exactly the 4 bytes hyperhotp sends. */
export const checkApdu = (): Uint8Array => Uint8Array.of(0x00, FeitianIns.CHECK, 0x00, 0x00);
export const eraseApdu = (): Uint8Array => Uint8Array.of(0x00, FeitianIns.ERASE, 0x00, 0x00);

export interface FeitianToken {
  /** 6 or 8. */
  digits: number;
  /** The HMAC-SHA1 seed, exactly 20 bytes. */
  seed: Uint8Array;
  /** Exactly 8 printable ASCII characters. */
  serial: string;
}

/** Tag and length of the serial inside the PROGRAM data (a clean TLV: 51 08 + 8 bytes). */
const SERIAL_TAG = 0x51;
/**
 * The first four bytes of the PROGRAM data, constant in hyperhotp. 53 looks like a tag, but 16 (22)
 * is not the length of what follows it [inferred: not a clean TLV]; 10 is YKOATH's HOTP type byte,
 * perhaps by coincidence [unverified].
 */
const PROGRAM_MAGIC = [0x53, 0x16, 0x01, 0x10] as const;
export const PROGRAM_DATA_LENGTH = 35;

/**
 * The 35 bytes of PROGRAM (docs/protocols.md §4.3): magic 53 16 01 10, the digits, the 20-byte
 * seed, then 51 08 and the 8 ASCII serial characters. Throws RangeError on parameters the format
 * cannot carry (the callers check them first and say so in words).
 */
export function programData(token: FeitianToken): Uint8Array {
  if (!FEITIAN_DIGITS.includes(token.digits)) throw new RangeError(`The key takes 6 or 8 digits, not ${token.digits}.`);
  if (token.seed.length !== FEITIAN_SEED_BYTES) throw new RangeError(`The key takes a ${FEITIAN_SEED_BYTES}-byte seed, not ${token.seed.length} bytes.`);
  if (!isFeitianSerial(token.serial)) throw new RangeError(`The key takes a serial of exactly ${FEITIAN_SERIAL_LENGTH} printable ASCII characters.`);
  const data = new Uint8Array(PROGRAM_DATA_LENGTH);
  data.set(PROGRAM_MAGIC, 0);
  data[4] = token.digits;
  data.set(token.seed, 5);
  data[25] = SERIAL_TAG;
  data[26] = FEITIAN_SERIAL_LENGTH;
  data.set(Buffer.from(token.serial, 'ascii'), 27);
  return data;
}

export function programApdu(token: FeitianToken): Uint8Array {
  return Uint8Array.of(0x00, FeitianIns.PROGRAM, 0x00, 0x00, PROGRAM_DATA_LENGTH, ...programData(token));
}

/** The inverse of programData, for the virtual key; undefined when the bytes are not in that shape. */
export function parseProgramData(data: Uint8Array): FeitianToken | undefined {
  if (data.length !== PROGRAM_DATA_LENGTH) return undefined;
  if (PROGRAM_MAGIC.some((byte, i) => data[i] !== byte) || data[25] !== SERIAL_TAG || data[26] !== FEITIAN_SERIAL_LENGTH) return undefined;
  const digits = data[4]!;
  const serial = Buffer.from(data.subarray(27)).toString('latin1');
  if (!FEITIAN_DIGITS.includes(digits) || !isFeitianSerial(serial)) return undefined;
  return { digits, seed: data.slice(5, 25), serial };
}

/**
 * The answer to CHECK, as the whole MSG payload (data ‖ SW). hyperhotp reads it byte by byte:
 * [11] = 90 means programmed, with the serial in [3..10]; [11] = 00 means not programmed (hyperhotp
 * reads a zero-padded 64-byte packet, so an answer shorter than 12 bytes reads 00 there too).
 * In ISO terms a programmed key answers 11 data bytes and SW 9000; bytes [0..2] are unknown, and
 * [1..2] may be 51 08 as in the PROGRAM data [unverified guess]. Undefined: anything else, and
 * any answer not ending in SW 90 00 — a 6D00 or 6A82 from a key without this applet reads 00 at
 * [11] too, and must not pass for an erased Feitian key.
 */
export type CheckAnswer = { programmed: true; serial: string } | { programmed: false };

export function parseCheckAnswer(payload: Uint8Array): CheckAnswer | undefined {
  if (payload.length < 2 || payload[payload.length - 2] !== 0x90 || payload[payload.length - 1] !== 0x00) return undefined;
  const marker = payload[11] ?? 0x00;
  if (marker === 0x00) return { programmed: false };
  if (marker !== 0x90) return undefined;
  return { programmed: true, serial: Buffer.from(payload.subarray(3, 11)).toString('latin1') };
}

/** What the virtual key answers to CHECK; the first three bytes are our guess [inferred]. */
export function checkAnswerFor(serial: string | undefined): Uint8Array {
  if (serial === undefined) return Uint8Array.of(0x90, 0x00); // [inferred]: only "byte 11 is 00" is known
  return Uint8Array.of(0x00, SERIAL_TAG, FEITIAN_SERIAL_LENGTH, ...Buffer.from(serial, 'latin1'), 0x90, 0x00);
}

/**
 * The answer to ERASE and PROGRAM: payload[0] 90 (SW 9000) is success, 69 (SW 69xx) failure —
 * hyperhotp: "perhaps you didn't push the button". Undefined: anything else.
 */
export function parseConfirmAnswer(payload: Uint8Array): 'done' | 'refused' | undefined {
  if (payload[0] === 0x90) return 'done';
  if (payload[0] === 0x69) return 'refused';
  return undefined;
}
