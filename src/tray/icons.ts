/**
 * The tray icons (icons/ at the repository root, drawn by build/icons.mjs) and where to find them:
 * next to the sources (vitest, tsx), next to the bundle (dist/keytap.cjs → ../icons), or inside a
 * single executable (SEA assets named "icons/<file>"). Backends ask for bytes through an
 * IconSource, so a new packaging only needs a new source.
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { TrayIconName } from './model.js';
import { decodePng, rgbaToArgb32 } from './png.js';

/** The PNG sizes build/icons.mjs draws for each state; all of them go into the SNI IconPixmap. */
export const PIXMAP_SIZES: readonly number[] = [16, 22, 24, 32, 48, 64];

export interface IconSource {
  /** Where the icons come from, for log lines. */
  readonly description: string;
  /** The bytes of icons/<file>, or undefined when there is no such file. */
  read(file: string): Buffer | undefined;
}

/** An SNI pixmap: ARGB32, network byte order. */
export interface Pixmap {
  width: number;
  height: number;
  argb: Buffer;
}

/** A file a platform's tray takes for this icon: a multi-size .ico on Windows, a template PNG on macOS. */
export function iconFileName(icon: TrayIconName, platform: NodeJS.Platform = process.platform): string {
  if (platform === 'win32') return `${icon}.ico`;
  // getlantern/systray draws the menu-bar image at 16 pt, so the 32 px @2x image stays sharp on Retina.
  if (platform === 'darwin') return `${icon}Template@2x.png`;
  return `${icon}-22.png`;
}

export function directoryIconSource(dir: string): IconSource {
  return {
    description: dir,
    read(file) {
      try {
        return readFileSync(join(dir, file));
      } catch {
        return undefined;
      }
    },
  };
}

/** SEA assets "icons/<file>" when running as a single executable; undefined otherwise. */
export function seaIconSource(): IconSource | undefined {
  type Sea = { isSea(): boolean; getRawAsset(key: string): ArrayBuffer };
  // process.getBuiltinModule (Node ≥ 20.16) loads node:sea without require(), which ESM lacks.
  const getBuiltin = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
  let sea: Sea | undefined;
  try {
    sea = getBuiltin?.('node:sea') as Sea | undefined;
    if (!sea?.isSea()) return undefined;
  } catch {
    return undefined;
  }
  const assets = sea;
  return {
    description: 'single-executable assets',
    read(file) {
      try {
        return Buffer.from(assets.getRawAsset(`icons/${file}`));
      } catch {
        return undefined;
      }
    },
  };
}

/**
 * The icons/ directory: $KEYTAP_ICONS_DIR, else the first of `<dir>/../icons` and `<dir>/../../icons`
 * that holds our icons, for dir = this module's directory (src/tray in development, dist/ in the
 * bundle) and the main script's directory (bin/, dist/, a test script).
 */
export function findIconsDir(): string | undefined {
  const fromEnv = process.env.KEYTAP_ICONS_DIR;
  if (fromEnv) return fromEnv;
  const starts: string[] = [];
  // __dirname exists in the CommonJS bundle and under vitest; plain ESM (tsx) falls back to argv[1].
  if (typeof __dirname === 'string') starts.push(__dirname);
  const main = process.argv[1];
  if (main) {
    try {
      starts.push(dirname(realpathSync(main)));
    } catch {
      starts.push(dirname(resolve(main)));
    }
  }
  for (const start of starts) {
    for (const up of ['..', join('..', '..')]) {
      const dir = resolve(start, up, 'icons');
      if (existsSync(join(dir, 'idle-22.png'))) return dir;
    }
  }
  return undefined;
}

const NO_ICONS: IconSource = { description: 'no icons found', read: () => undefined };

/** SEA assets, else the icons directory, else a source with nothing in it (the tray falls back to a theme icon). */
export function defaultIconSource(): IconSource {
  const sea = seaIconSource();
  if (sea) return sea;
  const dir = findIconsDir();
  return dir ? directoryIconSource(dir) : NO_ICONS;
}

/** Every size of one icon as SNI pixmaps, smallest first; sizes missing from the source are skipped. */
export function loadPixmaps(icon: TrayIconName, source: IconSource): Pixmap[] {
  const pixmaps: Pixmap[] = [];
  for (const size of PIXMAP_SIZES) {
    const png = source.read(`${icon}-${size}.png`);
    if (!png) continue;
    const image = decodePng(png);
    pixmaps.push({ width: image.width, height: image.height, argb: rgbaToArgb32(image.rgba) });
  }
  return pixmaps;
}
