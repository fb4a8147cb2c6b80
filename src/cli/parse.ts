/** Option parsers: a bad value is a usage error (exit 2) that names the option. */
import { InvalidArgumentError } from 'commander';
import type { HashAlgorithm, OathType } from '../otp/credential.js';

export function integerIn(min: number, max: number): (value: string) => number {
  return (value) => {
    if (!/^\d+$/u.test(value)) throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}.`);
    const n = Number.parseInt(value, 10);
    if (n < min || n > max) throw new InvalidArgumentError(`must be from ${min} to ${max}.`);
    return n;
  };
}

export function oathType(value: string): OathType {
  const upper = value.toUpperCase();
  if (upper !== 'TOTP' && upper !== 'HOTP') throw new InvalidArgumentError('must be totp or hotp.');
  return upper;
}

export function hashAlgorithm(value: string): HashAlgorithm {
  const upper = value.toUpperCase().replace('-', '');
  if (upper !== 'SHA1' && upper !== 'SHA256' && upper !== 'SHA512') throw new InvalidArgumentError('must be SHA1, SHA256 or SHA512.');
  return upper;
}

/** Reads all of standard input (for secrets that should not appear in the process list). */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').trim();
}
