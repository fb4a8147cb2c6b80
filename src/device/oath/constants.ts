/**
 * YKOATH and Nitrokey 3 Secrets App constants (docs/protocols.md §1.3–§1.6, §1.13, §2.3–§2.6, §2.11), for
 * both sides: the client session and the emulator's applet.
 */
import type { HashAlgorithm } from '../../otp/credential.js';

export const OATH_AID = Uint8Array.of(0xa0, 0x00, 0x00, 0x05, 0x27, 0x21, 0x01);

export const Ins = {
  PUT: 0x01,
  DELETE: 0x02,
  SET_CODE: 0x03,
  RESET: 0x04,
  RENAME: 0x05,
  LIST: 0xa1,
  CALCULATE: 0xa2,
  VALIDATE: 0xa3,
  /** Shares INS A4 with ISO SELECT; P1 = 00 tells them apart. */
  CALCULATE_ALL: 0xa4,
  SELECT: 0xa4,
  SEND_REMAINING: 0xa5,
  /** Nitrokey 3 extensions (§2.3). */
  /** Reverse HOTP: the key checks a code it is given (§2.9). */
  VERIFY_CODE: 0xb1,
  VERIFY_PIN: 0xb2,
  /** `80 <old> 81 <new>`. */
  CHANGE_PIN: 0xb3,
  /** `80 <pin>`; only while no PIN is set. */
  SET_PIN: 0xb4,
  /** Reads a password-safe entry (§2.8). */
  GET_CREDENTIAL: 0xb5,
  UPDATE_CREDENTIAL: 0xb7,
} as const;

export const Tag = {
  NAME: 0x71,
  NAME_LIST: 0x72,
  KEY: 0x73,
  CHALLENGE: 0x74,
  RESPONSE: 0x75,
  TRUNCATED: 0x76,
  HOTP: 0x77,
  /** In PUT it is tag + value with NO length byte. */
  PROPERTY: 0x78,
  VERSION: 0x79,
  IMF: 0x7a,
  ALGORITHM: 0x7b,
  TOUCH: 0x7c,
  /** Nitrokey 3 (§2.4). */
  PIN: 0x80,
  /** The new PIN in CHANGE PIN. */
  NEW_PIN: 0x81,
  PIN_COUNTER: 0x82,
  /** Password-safe login (≤ 128 bytes). */
  PWS_LOGIN: 0x83,
  /** Password-safe password (≤ 128 bytes). */
  PWS_PASSWORD: 0x84,
  /** Password-safe metadata (≤ 128 bytes). */
  PWS_METADATA: 0x85,
  SERIAL: 0x8f,
} as const;

export const OathTypeByte = { HOTP: 0x10, TOTP: 0x20 } as const;
export const AlgorithmByte = { SHA1: 0x01, SHA256: 0x02, SHA512: 0x03 } as const;
export const TYPE_MASK = 0xf0;
export const ALGORITHM_MASK = 0x0f;

/** The hash of an algorithm byte (after ALGORITHM_MASK), the inverse of AlgorithmByte. */
export function algorithmOfByte(byte: number): HashAlgorithm | undefined {
  return (Object.keys(AlgorithmByte) as HashAlgorithm[]).find((a) => AlgorithmByte[a] === byte);
}

/**
 * HMAC block size per hash (RFC 2104): the host hashes longer keys before PUT, and a YubiKey
 * refuses a longer key (docs/protocols.md §1.9).
 */
export const HASH_BLOCK_SIZE: Readonly<Record<HashAlgorithm, number>> = { SHA1: 64, SHA256: 64, SHA512: 128 };
/** Node's crypto name of each hash: the one table, in otp. */
export { NODE_HASH } from '../../otp/hotp.js';

/** The PUT property byte. */
export const Property = {
  INCREASING: 0x01,
  REQUIRE_TOUCH: 0x02,
  /** Nitrokey 3: encrypt the credential with the PIN-derived key (§2.4). */
  PIN_ENCRYPT: 0x04,
} as const;
/** Nitrokey 3 LIST v1 property bits; not the same values as the PUT property byte. */
export const ListProperty = { TOUCH: 0x01, PIN_ENCRYPTED: 0x02, PASSWORD_SAFE: 0x04 } as const;

export const Sw = {
  OK: 0x9000,
  /** 61xx: more data; SW2 is only a hint. */
  MORE_DATA_SW1: 0x61,
  VERIFICATION_FAILED: 0x6300,
  EXEC_ERROR_NONPERSISTENT: 0x6400,
  EXEC_ERROR_PERSISTENT: 0x6500,
  MEMORY_FAILURE: 0x6581,
  WRONG_LENGTH: 0x6700,
  /** Nitrokey 3: a CLA with a logical channel (§2.11). */
  LOGICAL_CHANNEL_NOT_SUPPORTED: 0x6881,
  /** Nitrokey 3: a CLA with secure messaging (§2.11). */
  SECURE_MESSAGING_NOT_SUPPORTED: 0x6882,
  CHAINING_NOT_SUPPORTED: 0x6884,
  SECURITY_STATUS: 0x6982,
  OPERATION_BLOCKED: 0x6983,
  NO_SUCH_OBJECT: 0x6984,
  CONDITIONS_OF_USE: 0x6985,
  WRONG_DATA: 0x6a80,
  FUNCTION_NOT_SUPPORTED: 0x6a81,
  NOT_FOUND: 0x6a82,
  NO_SPACE: 0x6a84,
  /** ISO "incorrect P1/P2", what the Nitrokey 3 answers (§2.11); not WRONG_P1P2 (6B00). */
  INCORRECT_P1P2: 0x6a86,
  /** ISO "wrong P1/P2"; ykman takes it from SELECT as "applet not present" (§1.5). */
  WRONG_P1P2: 0x6b00,
  INS_NOT_SUPPORTED: 0x6d00,
  CLA_NOT_SUPPORTED: 0x6e00,
  UNKNOWN: 0x6f00,
} as const;

/** HMAC keys shorter than this are zero-padded before PUT (yubikit HMAC_MINIMUM_KEY_SIZE). */
export const HMAC_MINIMUM_KEY_SIZE = 14;

/** PBKDF2 parameters of the YKOATH access key (docs/protocols.md §1.11). */
export const ACCESS_KEY_ITERATIONS = 1000;
export const ACCESS_KEY_LENGTH = 16;

/** Nitrokey 3 Secrets App: VERIFY PIN attempts, the counter's value after a right PIN (docs/protocols.md §2.7). */
export const NK3_PIN_ATTEMPTS = 8;
