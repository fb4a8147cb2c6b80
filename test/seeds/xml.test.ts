// The small XML reader: namespaces, entities, CDATA, comments, line numbers, and what it refuses;
// escaping round-trips any text.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { attribute, childNamed, elementPath, escapeAttribute, escapeText, parseXml } from '../../src/seeds/xml.js';

describe('parseXml', () => {
  it('resolves namespaces, decodes entities and CDATA, skips comments and PIs', () => {
    const { root, encoding } = parseXml(
      '<?xml version="1.0" encoding="UTF-8"?>\n<!-- c -->\n<a:r xmlns:a="urn:a" xmlns="urn:d" x="1 &amp; &#x32;&#51;\t">\n<?pi x?><c>&lt;&gt;&quot;&apos;<![CDATA[<&>]]></c><d xmlns="" y=\'q\'/></a:r>',
      'test file',
    );
    expect(encoding).toBe('UTF-8');
    expect(root).toMatchObject({ local: 'r', namespace: 'urn:a', line: 3 });
    expect(attribute(root, 'x')).toBe('1 & 23 ');
    const c = childNamed(root, 'c', 'urn:d')!;
    expect(c.text).toBe('<>"\'<&>');
    expect(childNamed(root, 'd', '')).toBeDefined();
    expect(elementPath(c)).toBe('r/c (line 4)');
  });

  it.each([
    ['<a><b></a>', /line 1: <\/a> does not match <b>/u],
    ['<a>\n<b>', /line 2: the file ends inside <b> opened on line 2: it was cut short/u],
    ['<a x="1" x="2"/>', /appears twice/u],
    ['<a>&foo;</a>', /unknown entity/u],
    ['<a>AT&T</a>', /bare "&"/u],
    ['<p:a/>', /prefix "p" .* not declared/u],
    ['<a/><b/>', /second root/u],
    ['text<a/>', /text before the root/u],
    ['<!DOCTYPE a SYSTEM "file:///etc/passwd"><a/>', /DOCTYPE/u],
    ['<a x=1/>', /not quoted/u],
    ['<a>\u0001</a>', /U\+0001 is not allowed/u],
    ['', /no root element/u],
  ])('refuses %j', (text, message) => {
    expect(() => parseXml(text, 'test file')).toThrow(message);
  });

  it('escapeText / escapeAttribute round-trip any text XML can carry', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }).filter((s) => !/[^\t\n\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u.test(s)), (s) => {
        const { root } = parseXml(`<a v="${escapeAttribute(s)}">${escapeText(s)}</a>`, 'test');
        expect(root.text).toBe(s);
        expect(attribute(root, 'v')).toBe(s);
      }),
      { numRuns: 500 },
    );
    expect(() => escapeText('\u0000')).toThrow(/cannot carry/u);
  });
});
