import { describe, expect, it } from 'vitest';
import { createTrayBackend } from '../../src/tray/index.js';

describe('createTrayBackend', () => {
  it('picks StatusNotifierItem on Linux and systray2 on Windows and macOS, without starting anything', () => {
    expect(createTrayBackend({ platform: 'linux' }).name).toBe('StatusNotifierItem');
    expect(createTrayBackend({ platform: 'freebsd' }).name).toBe('StatusNotifierItem');
    expect(createTrayBackend({ platform: 'win32' }).name).toBe('systray2');
    expect(createTrayBackend({ platform: 'darwin' }).name).toBe('systray2');
  });
});
