/**
 * The foreground window on Windows through user32 and kernel32, called with koffi (already
 * keytap's FFI for PC/SC): GetForegroundWindow, GetWindowTextW for its title,
 * GetWindowThreadProcessId and QueryFullProcessImageNameW (with PROCESS_QUERY_LIMITED_INFORMATION,
 * which any process of the same user may ask for) for its executable, whose name without ".exe"
 * is the application. No permission is needed; an elevated window's executable cannot be read by
 * a process that is not elevated, and then only the title is known.
 */
import { KeytapError } from '../../errors.js';
import { importKoffi } from '../../util/koffi.js';
import type { FocusedWindow, FocusedWindowSource } from './types.js';

/** The four calls, as this module needs them (koffi's, or a fake). */
export interface Win32Calls {
  /** The foreground window's handle; null when none (the desktop is switching). */
  foregroundWindow(): unknown;
  windowText(window: unknown): string;
  processId(window: unknown): number;
  /** The full path of the process's executable; undefined when it cannot be opened. */
  imagePath(processId: number): string | undefined;
}

export class WindowsFocusedWindow implements FocusedWindowSource {
  readonly name = 'Windows';

  constructor(private readonly calls: () => Promise<Win32Calls> = loadWin32Calls) {}

  async read(): Promise<FocusedWindow | undefined> {
    const api = await this.calls();
    const window = api.foregroundWindow();
    if (window === null || window === undefined || window === 0) return undefined;
    const title = api.windowText(window);
    const pid = api.processId(window);
    const path = pid > 0 ? api.imagePath(pid) : undefined;
    const exe = path?.split(/[\\/]/u).pop();
    return { title: title || undefined, app: exe ? exe.replace(/\.exe$/iu, '') : undefined };
  }
}

interface KoffiLib {
  func(prototype: string): (...args: unknown[]) => unknown;
}

let loaded: Promise<Win32Calls> | undefined;

/** Binds the calls once (a failure is not remembered). */
export function loadWin32Calls(): Promise<Win32Calls> {
  loaded ??= bindWin32().catch((error: unknown) => {
    loaded = undefined;
    throw new KeytapError('UNSUPPORTED', `keytap cannot read the foreground window: ${error instanceof Error ? error.message : String(error)}`);
  });
  return loaded;
}

const PROCESS_QUERY_LIMITED_INFORMATION = 0x1000;
const TITLE_CHARS = 512;
const PATH_CHARS = 1024;

async function bindWin32(): Promise<Win32Calls> {
  const koffi = await importKoffi<{ load(path: string): KoffiLib }>();
  const user32 = koffi.load('user32.dll');
  const kernel32 = koffi.load('kernel32.dll');
  const GetForegroundWindow = user32.func('void * __stdcall GetForegroundWindow()');
  const GetWindowTextW = user32.func('int __stdcall GetWindowTextW(void *hWnd, _Out_ uint16_t *lpString, int nMaxCount)');
  const GetWindowThreadProcessId = user32.func('uint32_t __stdcall GetWindowThreadProcessId(void *hWnd, _Out_ uint32_t *lpdwProcessId)');
  const OpenProcess = kernel32.func('void * __stdcall OpenProcess(uint32_t dwDesiredAccess, bool bInheritHandle, uint32_t dwProcessId)');
  const QueryFullProcessImageNameW = kernel32.func('bool __stdcall QueryFullProcessImageNameW(void *hProcess, uint32_t dwFlags, _Out_ uint16_t *lpExeName, _Inout_ uint32_t *lpdwSize)');
  const CloseHandle = kernel32.func('bool __stdcall CloseHandle(void *hObject)');
  const utf16 = (chars: Uint16Array, length: number): string => Buffer.from(chars.buffer, chars.byteOffset, Math.max(0, length) * 2).toString('utf16le');
  return {
    foregroundWindow: () => GetForegroundWindow(),
    windowText: (window) => {
      const chars = new Uint16Array(TITLE_CHARS);
      return utf16(chars, GetWindowTextW(window, chars, TITLE_CHARS) as number);
    },
    processId: (window) => {
      const pid = [0];
      GetWindowThreadProcessId(window, pid);
      return pid[0]!;
    },
    imagePath: (pid) => {
      const process = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, false, pid);
      if (!process) return undefined;
      try {
        const chars = new Uint16Array(PATH_CHARS);
        const size = [PATH_CHARS];
        return QueryFullProcessImageNameW(process, 0, chars, size) ? utf16(chars, size[0]!) : undefined;
      } finally {
        CloseHandle(process);
      }
    },
  };
}
