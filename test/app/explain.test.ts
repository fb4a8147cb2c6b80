// The tray's words for errors from the layers below, and the detail that travels over IPC so that
// `keytap code` (asking the running tray) words its hint for its own options.
import { describe, expect, it } from 'vitest';
import { toStateError } from '../../src/app/state-error.js';
import { answerError, errorAnswer } from '../../src/app/ipc.js';
import { cliCommand, explainForCli } from '../../src/cli/explain.js';
import { createProgram } from '../../src/cli/program.js';
import { KeytapError } from '../../src/errors.js';
import { statusError } from '../../src/device/oath/status.js';
import { Sw } from '../../src/device/oath/constants.js';

describe('tray wording of lower-layer errors', () => {
  it('a locked applet (6982 from the key) points to "Unlock…", and names no option of its own', () => {
    const error = statusError(Sw.SECURITY_STATUS, 'calculate-all');
    expect(error.code).toBe('AUTH_REQUIRED');
    expect(error.detail).toEqual({ kind: 'locked' });
    expect(error.hint).toBeUndefined();
    expect(toStateError(error)).toEqual({ code: 'AUTH_REQUIRED', message: error.message, hint: 'Choose "Unlock…" under the key in the menu to give its password.', detail: { kind: 'locked' } });
  });

  it('keeps the hint of an error without a detail', () => {
    const error = new KeytapError('TIMEOUT', 'The key did not answer.', { hint: 'Plug it in again.' });
    expect(toStateError(error)).toEqual({ code: 'TIMEOUT', message: 'The key did not answer.', hint: 'Plug it in again.' });
  });
});

describe('the detail over IPC', () => {
  const code = createProgram({ out: () => undefined, err: () => undefined }).commands.find((c) => c.name() === 'code')!;

  it('travels, so the CLI words the hint for its own command', () => {
    const answer = errorAnswer(new KeytapError('AUTH_REQUIRED', 'The OATH application on Nitrokey 3 is password-protected.', { detail: { kind: 'locked', keyName: 'Nitrokey 3' } }));
    const back = JSON.parse(JSON.stringify(answer)) as Parameters<typeof answerError>[0];
    const error = answerError(back);
    expect(error.detail).toEqual({ kind: 'locked', keyName: 'Nitrokey 3' });
    expect(explainForCli(error, cliCommand(code)).hint).toBe('Give the password with --password or the KEYTAP_PASSWORD environment variable.');
  });

  it('a detail of an unknown kind is dropped, not rendered', () => {
    const error = answerError({ ok: false, code: 'DEVICE_ERROR', message: 'x', hint: 'y', detail: { kind: 'made-up' } as never });
    expect(error.detail).toBeUndefined();
    expect(explainForCli(error, cliCommand(code))).toEqual({ message: 'x', hint: 'y' });
  });
});
