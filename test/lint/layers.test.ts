// The layering of docs/architecture.md is enforced by ESLint (no-restricted-imports per folder in
// eslint.config.js); these cases prove the rules bite: an import against the layers fails lint,
// the same import where the layers allow it passes.
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const eslint = new ESLint({ cwd: new URL('../..', import.meta.url).pathname });

/**
 * The messages ESLint gives for `code` as if it were the file at `path` (relative to the repository).
 * A file ESLint ignores or cannot parse (a message with no rule) fails, so that "no message" means linted and allowed.
 */
async function importMessages(path: string, code: string): Promise<string[]> {
  const results = await eslint.lintText(code, { filePath: path });
  expect(results).toHaveLength(1);
  const messages = results[0]!.messages;
  expect(messages.filter((m) => m.ruleId === null).map((m) => m.message)).toEqual([]);
  return messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

describe('layering lint rules', () => {
  it.each([
    ['src/device/open.ts', "import '../emulator/daemon.js';\n", 'src/device must not import'],
    ['src/device/oath/session.ts', "import '../../app/state.js';\n", 'src/device must not import'],
    ['src/device/discovery/watcher.ts', "import '../../cli/program.js';\n", 'src/device must not import'],
    ['src/seeds/entra.ts', "import '../provision/ledger.js';\n", 'src/seeds must not import'],
    ['src/provision/run.ts', "import '../emulator/virtual-file.js';\n", 'src/provision must not import'],
    ['src/app/controller.ts', "import '../emulator/daemon.js';\n", 'src/app must not import'],
    ['src/otp/hotp.ts', "import '../device/open.js';\n", 'src/otp must not import'],
    ['src/desktop/platform.ts', "import '../app/state.js';\n", 'src/desktop must not import'],
    ['src/tray/model.ts', "import '../app/state.js';\n", 'src/tray must not import'],
    ['src/emulator/store.ts', "import '../app/config.js';\n", 'src/emulator must not import'],
    ['src/qr/find.ts', "import '../desktop/platform.js';\n", 'src/qr must not import'],
  ])('%s may not %s', async (path, code, expected) => {
    const messages = await importMessages(path, code);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toContain(expected);
  });

  it.each([
    ['src/emulator/store.ts', "import '../device/oath/dialect.js';\n"],
    ['src/app/controller.ts', "import '../device/open.js';\n"],
    ['src/app/controller.ts', "import './tray-render.js';\n"],
    ['src/provision/run.ts', "import '../seeds/index.js';\n"],
    ['src/cli/program.ts', "import '../emulator/daemon.js';\n"],
    ['src/qr/accounts.ts', "import '../otp/migration.js';\n"],
    ['src/app/controller.ts', "import '../qr/accounts.js';\n"],
  ])('%s may %s', async (path, code) => {
    expect(await importMessages(path, code)).toEqual([]);
  });
});
