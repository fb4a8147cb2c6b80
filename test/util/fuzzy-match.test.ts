import { describe, expect, it } from 'vitest';
import { fuzzyFilter, fuzzyScore } from '../../src/util/fuzzy-match.js';

const lines = ['GitHub: alice', 'GitLab: alice', 'Bank: bob (60 s)', 'Google: alice@example.com', 'AWS: root (HOTP)', 'github-enterprise: alice'];
const ranked = (query: string): string[] => fuzzyFilter(query, lines).map((m) => lines[m.index]!);

describe('the terminal picker matching rule', () => {
  it('an empty query keeps every line, in order', () => {
    expect(ranked('')).toEqual(lines);
    expect(ranked('   ')).toEqual(lines);
  });

  it('letters in order, not necessarily together, any case; a missing or misordered letter does not match', () => {
    expect(ranked('bnk')).toEqual(['Bank: bob (60 s)']);
    expect(ranked('BOB')).toEqual(['Bank: bob (60 s)']);
    expect(ranked('knab')).toEqual([]);
    expect(ranked('zz')).toEqual([]);
  });

  it('each word matches on its own, anywhere in the line', () => {
    expect(ranked('60 bob')).toEqual(['Bank: bob (60 s)']);
    expect(ranked('alice exa')).toEqual(['Google: alice@example.com']);
    expect(ranked('hotp aws')).toEqual(['AWS: root (HOTP)']);
  });

  it('letters together and at word starts rank first; a shorter line beats a longer one', () => {
    expect(ranked('gith')).toEqual(['GitHub: alice', 'github-enterprise: alice']);
    // "gle" together in Google beats g…l…e spread over GitLab's line
    expect(ranked('gle')[0]).toBe('Google: alice@example.com');
    expect(ranked('gle')).toHaveLength(4);
    expect(ranked('la')[0]).toBe('GitLab: alice');
    expect(ranked('root')).toEqual(['AWS: root (HOTP)']);
  });

  it('scores a line, or says it does not match', () => {
    expect(fuzzyScore('x', 'GitHub: alice')).toBeUndefined();
    expect(fuzzyScore('', 'GitHub: alice')).toBe(0);
    // "ali" together beats a, l, i spread over the line, whatever else scores
    expect(fuzzyScore('ali', 'xx alice')!).toBeGreaterThan(fuzzyScore('ali', 'xx a-l-i')!);
  });

  it('ties keep the given order', () => {
    expect(fuzzyFilter('a', ['xa', 'ya', 'za']).map((m) => m.index)).toEqual([0, 1, 2]);
  });
});
