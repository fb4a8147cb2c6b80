/**
 * A small, strict, non-validating XML 1.0 reader with namespaces, and the escaping the writers
 * use. Enough for seed files (PSKC, DualShield) and nothing more: no DTDs (a DOCTYPE is refused,
 * so there is no entity expansion and no external fetch), only the five predefined entities and
 * character references, UTF-8 only. Errors are BAD_INPUT with the line number and never quote
 * character data (it may be a secret).
 */
import { printable } from '../util/printable.js';
import { badInput } from './token.js';

export const XML_NS = 'http://www.w3.org/XML/1998/namespace';
const XMLNS_NS = 'http://www.w3.org/2000/xmlns/';

export interface XmlAttribute {
  /** As written, with its prefix. */
  name: string;
  local: string;
  /** '' when unprefixed. */
  namespace: string;
  value: string;
}

export interface XmlElement {
  /** As written, with its prefix ("pskc:Key"). */
  name: string;
  local: string;
  /** '' when in no namespace. */
  namespace: string;
  attributes: XmlAttribute[];
  children: XmlElement[];
  /** Character data directly inside this element (CDATA included), not its descendants'. */
  text: string;
  /** 1-based line of the start tag. */
  line: number;
  parent: XmlElement | undefined;
}

export interface XmlDocument {
  root: XmlElement;
  /** The encoding the XML declaration names, if any. */
  encoding: string | undefined;
}

/**
 * The most elements a seed file may have. A PSKC token is about 20 elements, so 32 MiB of encrypted
 * PSKC (some 27,000 tokens) is about 550,000; millions of tiny elements are a hostile file, and each
 * costs a couple of hundred bytes of memory here.
 */
const MAX_XML_ELEMENTS = 1_000_000;

const NAME = /[A-Za-z_\u00C0-\uFFFF][\w.\-\u00B7\u00C0-\uFFFF]*(?::[A-Za-z_\u00C0-\uFFFF][\w.\-\u00B7\u00C0-\uFFFF]*)?/uy;
const SPACE = /[ \t\n]*/y;
const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };
// Characters XML 1.0 allows: tab, LF, CR, U+0020–U+D7FF, U+E000–U+FFFD, U+10000–U+10FFFF.
const NOT_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

/** Names in messages: those of complete tags, which hold no file content but the name; long ones cut. */
export function shownName(name: string): string {
  return printable(name.length > 40 ? `${name.slice(0, 40)}…` : name);
}

/**
 * The namespace bindings in scope: one stack of namespaces per prefix, and per open element the
 * prefixes it bound, undone when it closes. Constant work per binding, however many an element
 * declares or inherits (copying a map per element would be quadratic).
 */
class NamespaceScopes {
  private readonly bindings = new Map<string, string[]>([['xml', [XML_NS]]]);
  private readonly bound: string[][] = [];

  enter(): void {
    this.bound.push([]);
  }

  bind(prefix: string, namespace: string): void {
    let stack = this.bindings.get(prefix);
    if (!stack) this.bindings.set(prefix, (stack = []));
    stack.push(namespace);
    this.bound[this.bound.length - 1]!.push(prefix);
  }

  lookup(prefix: string): string | undefined {
    const stack = this.bindings.get(prefix);
    return stack?.[stack.length - 1];
  }

  leave(): void {
    for (const prefix of this.bound.pop() ?? []) this.bindings.get(prefix)!.pop();
  }
}

class Parser {
  private readonly text: string;
  private readonly what: string;
  private pos = 0;
  private readonly lineStarts: number[] = [0];

  constructor(text: string, what: string) {
    // XML end-of-line handling: CRLF and lone CR become LF.
    this.text = text.includes('\r') ? text.replace(/\r\n?/gu, '\n') : text;
    this.what = what;
    for (let i = this.text.indexOf('\n'); i >= 0; i = this.text.indexOf('\n', i + 1)) this.lineStarts.push(i + 1);
  }

  lineAt(offset: number): number {
    let low = 0;
    let high = this.lineStarts.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (this.lineStarts[mid]! <= offset) low = mid;
      else high = mid - 1;
    }
    return low + 1;
  }

  fail(message: string, offset = this.pos): never {
    throw badInput(`The ${this.what} is not well-formed XML: line ${this.lineAt(offset)}: ${message}.`);
  }

  parse(): XmlDocument {
    const { text } = this;
    const bad = NOT_XML_CHAR.exec(text);
    if (bad) this.fail(`character U+${bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')} is not allowed in XML`, bad.index);
    let encoding: string | undefined;
    if (text.startsWith('<?xml') && /[\s?]/u.test(text[5] ?? '')) {
      const end = text.indexOf('?>');
      if (end < 0) this.fail('the XML declaration is not closed');
      const declaration = text.slice(0, end);
      encoding = /encoding\s*=\s*["']([^"']*)["']/u.exec(declaration)?.[1];
      this.pos = end + 2;
    }
    const stack: XmlElement[] = [];
    const namespaces = new NamespaceScopes();
    let root: XmlElement | undefined;
    let elementCount = 0;
    let textStart = -1;
    const flushText = (end: number): void => {
      if (textStart < 0) return;
      const raw = text.slice(textStart, end);
      const top = stack[stack.length - 1];
      if (top) top.text += this.decodeEntities(raw, textStart);
      else if (raw.trim() !== '') this.fail(root ? 'there is text after the root element' : 'there is text before the root element', textStart);
      textStart = -1;
    };
    while (this.pos < text.length) {
      const lt = text.indexOf('<', this.pos);
      if (lt < 0) {
        if (textStart < 0) textStart = this.pos;
        this.pos = text.length;
        break;
      }
      if (lt > this.pos && textStart < 0) textStart = this.pos;
      flushText(lt);
      this.pos = lt;
      if (text.startsWith('<!--', lt)) {
        const end = text.indexOf('-->', lt + 4);
        if (end < 0) this.fail('a comment is not closed (the file may be cut short)', lt);
        this.pos = end + 3;
      } else if (text.startsWith('<![CDATA[', lt)) {
        const top = stack[stack.length - 1];
        if (!top) this.fail('CDATA outside the root element', lt);
        const end = text.indexOf(']]>', lt + 9);
        if (end < 0) this.fail('a CDATA section is not closed (the file may be cut short)', lt);
        top.text += text.slice(lt + 9, end);
        this.pos = end + 3;
      } else if (text.startsWith('<!DOCTYPE', lt) || text.startsWith('<!', lt)) {
        this.fail('a DOCTYPE or other declaration; seed files must not have one (keytap does not expand entities)', lt);
      } else if (text.startsWith('<?', lt)) {
        const end = text.indexOf('?>', lt + 2);
        if (end < 0) this.fail('a processing instruction is not closed', lt);
        if (/^<\?xml[\s?]/iu.test(text.slice(lt, lt + 6))) this.fail('the XML declaration must come first', lt);
        this.pos = end + 2;
      } else if (text.startsWith('</', lt)) {
        this.pos = lt + 2;
        const name = this.readName('a closing tag');
        SPACE.lastIndex = this.pos;
        SPACE.exec(text);
        this.pos = SPACE.lastIndex;
        if (text[this.pos] !== '>') this.fail('a closing tag is not closed (expected ">" after its name)');
        this.pos++;
        const open = stack.pop();
        if (!open) this.fail(`</${shownName(name)}> closes nothing`, lt);
        if (open.name !== name) this.fail(`</${shownName(name)}> does not match <${shownName(open.name)}> opened on line ${open.line}`, lt);
        namespaces.leave();
      } else {
        if (root && stack.length === 0) this.fail('there is a second root element', lt);
        if (++elementCount > MAX_XML_ELEMENTS) this.fail(`the file has more than ${MAX_XML_ELEMENTS.toLocaleString('en')} elements, more than any seed file`, lt);
        this.pos = lt + 1;
        const { element, selfClosing } = this.readStartTag(lt, stack[stack.length - 1], namespaces);
        if (!root) root = element;
        stack[stack.length - 1]?.children.push(element);
        if (selfClosing) namespaces.leave();
        else stack.push(element);
      }
    }
    flushText(text.length);
    if (stack.length > 0) {
      const open = stack[stack.length - 1]!;
      this.fail(`the file ends inside <${shownName(open.name)}> opened on line ${open.line}: it was cut short`, text.length);
    }
    if (!root) this.fail('there is no root element', 0);
    return { root, encoding };
  }

  private readName(where: string): string {
    NAME.lastIndex = this.pos;
    const match = NAME.exec(this.text);
    if (!match) this.fail(`a name is missing or malformed in ${where}`);
    this.pos = NAME.lastIndex;
    return match[0];
  }

  /**
   * A start tag from after its "<". Until the tag is complete nothing read from it is put in a
   * message: a tag that runs into the text after it (a ">" deleted) has that text, perhaps a
   * secret, in its name or attributes, so those messages name the line and the tag's first line.
   */
  private readStartTag(start: number, parent: XmlElement | undefined, namespaces: NamespaceScopes): { element: XmlElement; selfClosing: boolean } {
    const { text } = this;
    const tagLine = this.lineAt(start);
    const inTag = `in the start tag on line ${tagLine}`;
    const name = this.readName(`the start tag on line ${tagLine}`);
    const raw: { name: string; value: string; offset: number }[] = [];
    const seen = new Set<string>();
    let selfClosing = false;
    for (;;) {
      const before = this.pos;
      SPACE.lastIndex = this.pos;
      SPACE.exec(text);
      this.pos = SPACE.lastIndex;
      if (this.pos >= text.length) this.fail(`the file ends inside the start tag on line ${tagLine}: it was cut short`, start);
      if (text.startsWith('/>', this.pos)) {
        this.pos += 2;
        selfClosing = true;
        break;
      }
      if (text[this.pos] === '>') {
        this.pos++;
        break;
      }
      if (this.pos === before) this.fail(`the start tag on line ${tagLine} is malformed (expected white space, ">" or "/>")`);
      const offset = this.pos;
      const attributeName = this.readName(`the start tag on line ${tagLine}`);
      SPACE.lastIndex = this.pos;
      SPACE.exec(text);
      this.pos = SPACE.lastIndex;
      if (text[this.pos] !== '=') this.fail(`an attribute ${inTag} has no value (expected "=")`);
      this.pos++;
      SPACE.lastIndex = this.pos;
      SPACE.exec(text);
      this.pos = SPACE.lastIndex;
      const quote = text[this.pos];
      if (quote !== '"' && quote !== "'") this.fail(`the value of an attribute ${inTag} is not quoted`);
      const end = text.indexOf(quote, this.pos + 1);
      if (end < 0) this.fail(`the file ends inside the start tag on line ${tagLine}: it was cut short`, start);
      const rawValue = text.slice(this.pos + 1, end);
      if (rawValue.includes('<')) this.fail(`the value of an attribute ${inTag} contains "<" (is a quote missing?)`);
      if (seen.has(attributeName)) this.fail(`an attribute appears twice ${inTag}`, offset);
      seen.add(attributeName);
      // Attribute-value normalisation: literal white space becomes a space, references stay as they are.
      raw.push({ name: attributeName, value: this.decodeEntities(rawValue.replace(/[\t\n]/gu, ' '), this.pos + 1), offset });
      this.pos = end + 1;
    }
    namespaces.enter();
    for (const attribute of raw) {
      if (attribute.name === 'xmlns' || attribute.name.startsWith('xmlns:')) {
        const prefix = attribute.name === 'xmlns' ? '' : attribute.name.slice(6);
        if (prefix !== '' && attribute.value === '') this.fail(`the prefix ${shownName(prefix)} is bound to an empty namespace`, attribute.offset);
        namespaces.bind(prefix, attribute.value);
      }
    }
    const resolve = (qualified: string, isElement: boolean, offset: number): { local: string; namespace: string } => {
      const colon = qualified.indexOf(':');
      if (colon < 0) return { local: qualified, namespace: isElement ? (namespaces.lookup('') ?? '') : '' };
      const prefix = qualified.slice(0, colon);
      const namespace = prefix === 'xmlns' ? XMLNS_NS : namespaces.lookup(prefix);
      if (namespace === undefined) this.fail(`the prefix "${shownName(prefix)}" of ${shownName(qualified)} is not declared`, offset);
      return { local: qualified.slice(colon + 1), namespace };
    };
    const attributes: XmlAttribute[] = raw.map((a) => ({ name: a.name, value: a.value, ...resolve(a.name, false, a.offset) }));
    const element: XmlElement = { name, ...resolve(name, true, start), attributes, children: [], text: '', line: tagLine, parent };
    return { element, selfClosing };
  }

  private decodeEntities(raw: string, offset: number): string {
    if (!raw.includes('&')) {
      if (raw.includes('>') && raw.includes(']]>')) this.fail('"]]>" in character data', offset + raw.indexOf(']]>'));
      return raw;
    }
    let out = '';
    let last = 0;
    for (let amp = raw.indexOf('&'); amp >= 0; amp = raw.indexOf('&', last)) {
      out += raw.slice(last, amp);
      const semicolon = raw.indexOf(';', amp);
      const reference = semicolon < 0 ? '' : raw.slice(amp + 1, semicolon);
      let value: string | undefined;
      if (/^#[0-9]{1,7}$/u.test(reference) || /^#x[0-9A-Fa-f]{1,6}$/u.test(reference)) {
        const code = reference[1] === 'x' ? Number.parseInt(reference.slice(2), 16) : Number.parseInt(reference.slice(1), 10);
        const char = code <= 0x10ffff ? String.fromCodePoint(code) : '\u0000';
        if (!NOT_XML_CHAR.test(char)) value = char;
        else this.fail('a character reference names a character XML does not allow', offset + amp);
      } else {
        value = PREDEFINED[reference];
      }
      if (value === undefined) this.fail('a bare "&" or an unknown entity (write "&amp;" for "&")', offset + amp);
      out += value;
      last = semicolon + 1;
    }
    return out + raw.slice(last);
  }
}

/** Parses a whole document. `what` names it in messages ("PSKC file"). */
export function parseXml(text: string, what: string): XmlDocument {
  return new Parser(text, what).parse();
}

/** Children with this local name in this namespace ('*' for any namespace). */
export function childrenNamed(element: XmlElement, local: string, namespace: string): XmlElement[] {
  return element.children.filter((c) => c.local === local && (namespace === '*' || c.namespace === namespace));
}

export function childNamed(element: XmlElement, local: string, namespace: string): XmlElement | undefined {
  return element.children.find((c) => c.local === local && (namespace === '*' || c.namespace === namespace));
}

export function attribute(element: XmlElement, local: string): string | undefined {
  return element.attributes.find((a) => a.local === local && a.namespace === '')?.value;
}

/** "KeyContainer/KeyPackage[2]/Key/Data (line 14)": the path, with a position where siblings share the name. */
export function elementPath(element: XmlElement): string {
  const parts: string[] = [];
  for (let e: XmlElement | undefined = element; e; e = e.parent) {
    const { index, count } = siblingPosition(e);
    parts.unshift(count > 1 ? `${e.local}[${index}]` : e.local);
  }
  return `${parts.join('/')} (line ${element.line})`;
}

/** Per parent, each child's 1-based position among the siblings of its name, and their number (computed once per parent). */
const SIBLING_POSITIONS = new WeakMap<XmlElement, Map<XmlElement, { index: number; count: number }>>();

function siblingPosition(element: XmlElement): { index: number; count: number } {
  const { parent } = element;
  if (!parent) return { index: 1, count: 1 };
  let positions = SIBLING_POSITIONS.get(parent);
  if (!positions) {
    const counts = new Map<string, number>();
    positions = new Map();
    for (const child of parent.children) {
      const index = (counts.get(child.local) ?? 0) + 1;
      counts.set(child.local, index);
      positions.set(child, { index, count: 0 });
    }
    for (const [child, position] of positions) position.count = counts.get(child.local)!;
    SIBLING_POSITIONS.set(parent, positions);
  }
  return positions.get(element)!;
}

/** Text for element content. Throws BAD_INPUT for characters XML 1.0 cannot carry. */
export function escapeText(value: string): string {
  assertXmlChars(value);
  return value.replace(/[&<>]/gu, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : '&gt;'));
}

/** Text for a double-quoted attribute value; tab, LF and CR are written as references so they survive normalisation. */
export function escapeAttribute(value: string): string {
  assertXmlChars(value);
  return value.replace(/[&<>"\t\n\r]/gu, (c) => ATTRIBUTE_ESCAPES[c] ?? c);
}

const ATTRIBUTE_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', '\t': '&#9;', '\n': '&#10;', '\r': '&#13;' };

function assertXmlChars(value: string): void {
  if (NOT_XML_CHAR.test(value)) throw badInput('A text field contains a character that XML cannot carry (a control character or a broken surrogate).');
}
