/** The pure OATH layer: credential model and ids, Base32/hex, HOTP/TOTP, otpauth URIs. No I/O. */
export type { Credential, CredentialIdParts, CredentialWithSecret, HashAlgorithm, OathType } from './credential.js';
export {
  DEFAULT_PERIOD,
  HASH_ALGORITHMS,
  MAX_CREDENTIAL_ID_BYTES,
  MAX_DIGITS,
  MIN_DIGITS,
  OATH_TYPES,
  credentialId,
  formatCredentialId,
  normalizeCredential,
  parseCredentialId,
} from './credential.js';
export { base32Decode, base32Encode, hexDecode, hexEncode, parseSecret } from './encoding.js';
export {
  counterBytes,
  dynamicTruncate,
  formatCode,
  hmac,
  hotp,
  maskTruncated,
  timeStep,
  totp,
  validityWindow,
} from './hotp.js';
export { formatOtpauthUri, parseOtpauthUri } from './otpauth-uri.js';
