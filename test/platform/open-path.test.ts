// "Settings…": an opener that finds no application for the file is an error the tray can show
// (with the file's path), not a silent success.
import { describe, expect, it } from 'vitest';
import { openPath } from '../../src/desktop/open-path.js';
import { rejection } from '../support/rejection.js';

describe('openPath', () => {
  it('rejects, naming the file, when the opener finds no application (xdg-open exits 3)', async () => {
    const error = await rejection(openPath('/cfg/config.json', { opener: ['sh', ['-c', 'exit 3', 'xdg-open']] }));
    expect(error.code).toBe('UNSUPPORTED');
    expect(error.message).toBe('No application opened /cfg/config.json (sh exited with 3).');
  });

  it('resolves when the opener succeeds, or is still running the application', async () => {
    await openPath('/cfg/config.json', { opener: ['sh', ['-c', 'exit 0', 'xdg-open']] });
    await openPath('/cfg/config.json', { opener: ['sh', ['-c', 'sleep 5', 'xdg-open']], verdictMs: 100 });
  });

  it('rejects when there is no opener at all', async () => {
    const error = await rejection(openPath('/cfg/config.json', { opener: ['no-such-opener-keytap', []] }));
    expect(error.message).toMatch(/^no-such-opener-keytap could not be started/u);
  });
});
