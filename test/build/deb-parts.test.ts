// The pure parts of the Debian package build: package versions and names, and reading commander's
// help into the man page. (test/dist/deb.test.ts checks the package itself.)
import { describe, expect, it } from 'vitest';
import { debFileName, debianVersion } from '../../build/deb.mjs';
import { collectHelp, manPage, parseHelp } from '../../build/deb/manpage.mjs';

describe('package versions', () => {
  it('a release is its own Debian version; a pre-release sorts before the release with ~', () => {
    expect(debianVersion('0.1.0')).toBe('0.1.0');
    expect(debianVersion('0.2.0-beta.1')).toBe('0.2.0~beta.1');
    expect(debianVersion('1.0.0+build.5')).toBe('1.0.0+build.5');
    expect(debFileName('0.1.0')).toBe('keytap_0.1.0_amd64.deb');
    expect(debFileName('0.2.0-rc.1')).toBe('keytap_0.2.0~rc.1_amd64.deb');
  });

  it('refuses what is not a version', () => {
    expect(() => debianVersion('0.1')).toThrow('"0.1" is not a version');
    expect(() => debianVersion('v0.1.0')).toThrow('is not a version');
    expect(() => debianVersion('0.1.0 ')).toThrow('is not a version');
  });
});

// Help as commander 14 prints it to a pipe (80 columns), wrapped lines included.
const TOP = `Usage: keytap [options] [command]

Read TOTP/HOTP codes from USB security keys, and program keys with OATH
accounts.

Options:
  -V, --version             output the version number
  -h, --help                display help for command

Commands:
  code [options] [query]    print the current code of the account matching QUERY
                            (the only account when QUERY is left out)
  virtual                   a software key that other keytap processes can use
                            as if it were plugged in
  help [command]            display help for command
`;
const CODE = `Usage: keytap code [options] [query]

print the current code of the account matching QUERY (the only account when
QUERY is left out)

Arguments:
  query                  the account: its full name, or a part of it that
                         matches only it

Options:
  --json                 print {id, code, validFrom, validTo} as JSON
  --virtual <file>       use the virtual key kept in FILE (created if missing),
                         in this process
  -h, --help             display help for command
`;
const VIRTUAL = `Usage: keytap virtual [options] [command]

a software key that other keytap processes can use as if it were plugged in

Options:
  -h, --help              display help for command

Commands:
  start [options] <file>  start serving the virtual key kept in FILE (created if
                          missing)
  help [command]          display help for command
`;
const START = `Usage: keytap virtual start [options] <file>

start serving the virtual key kept in FILE (created if missing)

Arguments:
  file                    the virtual key's file

Options:
  --vpcd [host:port]      also serve it as a card in vsmartcard's vpcd
  --suffix <text>         .json unless given; a backslash \\ is literal
  -h, --help              display help for command
`;

describe('reading commander\'s help', () => {
  it('takes usage, description and sections apart and joins wrapped lines', () => {
    expect(parseHelp(CODE)).toEqual({
      usage: 'keytap code [options] [query]',
      description: ['print the current code of the account matching QUERY (the only account when QUERY is left out)'],
      sections: [
        { title: 'Arguments', items: [{ term: 'query', description: 'the account: its full name, or a part of it that matches only it' }] },
        {
          title: 'Options',
          items: [
            { term: '--json', description: 'print {id, code, validFrom, validTo} as JSON' },
            { term: '--virtual <file>', description: 'use the virtual key kept in FILE (created if missing), in this process' },
            { term: '-h, --help', description: 'display help for command' },
          ],
        },
      ],
    });
  });

  it('refuses output that is not commander\'s help, rather than making a wrong page', () => {
    expect(() => parseHelp('keytap 0.1.0\n')).toThrow('does not start with "Usage:"');
    expect(() => parseHelp('Usage: keytap\n\nOptions:\nnot indented\n')).toThrow('cannot read this help line');
  });

  it('asks for the help of every command, depth first, and not of "help"', async () => {
    const asked: string[] = [];
    const pages: Record<string, string> = { '--help': TOP, 'code --help': CODE, 'virtual --help': VIRTUAL, 'virtual start --help': START };
    const commands = await collectHelp((args) => {
      asked.push(args.join(' '));
      const page = pages[args.join(' ')];
      return page ? Promise.resolve(page) : Promise.reject(new Error(`no help for ${args.join(' ')}`));
    });
    expect(asked).toEqual(['--help', 'code --help', 'virtual --help', 'virtual start --help']);
    expect(commands.map((c) => c.path)).toEqual([[], ['code'], ['virtual'], ['virtual', 'start']]);
  });
});

describe('the man page', () => {
  it('has NAME, SYNOPSIS, the options and a section per command, with roff escapes', async () => {
    const pages: Record<string, string> = { '--help': TOP, 'code --help': CODE, 'virtual --help': VIRTUAL, 'virtual start --help': START };
    const commands = await collectHelp((args) => Promise.resolve(pages[args.join(' ')]!));
    const page = manPage({ version: '0.2.0-rc.1', date: '2026-12-01', summary: 'OATH codes from USB security keys', commands });
    const lines = page.split('\n');
    expect(lines[1]).toBe('.TH KEYTAP 1 "2026-12-01" "keytap 0.2.0\\-rc.1" "User Commands"');
    expect(page).toContain('\n.SH NAME\nkeytap \\- OATH codes from USB security keys\n.SH SYNOPSIS\n.B keytap [options] [command]\n');
    expect(page).toContain('\n.SH OPTIONS\n.TP\n.B \\-V, \\-\\-version\noutput the version number\n');
    expect(page).toContain('\n.SS "keytap code [options] [query]"\nprint the current code');
    expect(page).toContain('\n.TP\n.B \\-\\-virtual <file>\nuse the virtual key kept in FILE (created if missing), in this process\n');
    expect(page).toContain('\n.SS "keytap virtual start [options] <file>"\n');
    // Under a command, its -h, --help says nothing new; a command with no other option has no Options.
    expect(page.split('.SH COMMANDS')[1]).not.toContain('\\-\\-help');
    expect(page.split('.SS "keytap virtual [options] [command]"')[1]!.split('.SS')[0]).not.toContain('Options:');
    expect(page).toContain('\n.B \\-\\-suffix <text>\n\\&.json unless given; a backslash \\e is literal\n');
    // No line of text starts with a control character ('.' or "'") unless it is a request.
    const texts = lines.filter((line) => !/^\.(?:\\"|(?:TH|SH|SS|TP|B|PP|RS|RE)\b)/u.test(line) && line !== '');
    expect(texts.filter((line) => /^[.']/u.test(line))).toEqual([]);
  });
});
