import { expect } from 'vitest';
import { KeytapError } from '../../src/errors.js';

/** The KeytapError `promise` rejects with; fails the test when it resolves or rejects with anything else. */
export async function rejection(promise: Promise<unknown>): Promise<KeytapError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(KeytapError);
    return error as KeytapError;
  }
  throw new Error('expected a rejection');
}
