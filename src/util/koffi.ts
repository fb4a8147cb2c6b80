/**
 * Loads koffi (FFI with prebuilt natives for every platform, no compiler) for the modules that
 * call system libraries: PC/SC (device/transport/pcsc-api.ts), the Wayland socket
 * (desktop/wayland/libc.ts), abstract Unix sockets (util/abstract-socket.ts) and the Windows
 * foreground window (desktop/focused-window/windows.ts).
 *
 * A plain require / import: the single-executable build redirects koffi's own native loading. In
 * the CommonJS bundle require() loads koffi's CommonJS build directly, where import() would first
 * start Node's ESM loader for it (10 to 30 ms of a command's start-up); the TypeScript source runs
 * as ESM (tests, tsx), which has no require.
 */
export async function importKoffi<T>(): Promise<T> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- see above
  if (typeof require === 'function') return require('koffi') as T;
  const imported = (await import('koffi')) as unknown as T & { default?: T };
  return imported.default ?? imported;
}
