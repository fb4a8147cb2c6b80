/** Google Authenticator export payloads built by Google's protobuf runtime (test/peers/migration_payload.py). */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

export interface ExportedAccount {
  secret_hex: string;
  name?: string;
  issuer?: string;
  /** Enum numbers as the .proto has them: algorithm 1 SHA1, 2 SHA256, 3 SHA512, 4 MD5; digits 1 six, 2 eight; type 1 HOTP, 2 TOTP. */
  algorithm?: number;
  digits?: number;
  type?: number;
  counter?: number;
}

export interface ExportSpec {
  otp_parameters: ExportedAccount[];
  version?: number;
  batch_size?: number;
  batch_index?: number;
  batch_id?: number;
}

const SCRIPT = join(import.meta.dirname, '..', 'peers', 'migration_payload.py');

/** The payload in Base64, as in the data parameter before URI escaping. */
export function migrationPayload(spec: ExportSpec): string {
  return execFileSync('/usr/bin/python3', [SCRIPT], { input: JSON.stringify(spec), encoding: 'utf8' });
}

/** The otpauth-migration URI Google Authenticator shows as a QR code (Base64 %-escaped). */
export function migrationUri(spec: ExportSpec): string {
  return `otpauth-migration://offline?data=${encodeURIComponent(migrationPayload(spec))}`;
}
