/**
 * The terminal picker's matching rule (`keytap pick`): a query matches a line when each of its
 * words occurs in the line as a subsequence, ignoring case ("gh al" matches "GitHub: alice").
 * Matches are ranked so that what a person meant comes first: letters that follow each other in
 * the line, letters at the start of a word, an early first letter and a short line all score.
 * Pure; ties keep the lines' own order, so an empty query lists everything as given.
 */

export interface FuzzyMatch {
  /** The line's index in the list searched. */
  index: number;
  score: number;
  /** Where in the line each matched letter is (for highlighting), ascending. */
  positions: number[];
}

const CONSECUTIVE = 8;
const WORD_START = 6;
const LEADING_PENALTY_CAP = 10;

/** The best match of one word in `line` (greedy from each possible start), or undefined. */
function matchWord(word: string, line: string, from: number): { score: number; positions: number[] } | undefined {
  let best: { score: number; positions: number[] } | undefined;
  for (let start = line.indexOf(word[0]!, from); start >= 0; start = line.indexOf(word[0]!, start + 1)) {
    const positions = [start];
    let at = start;
    for (let i = 1; i < word.length; i++) {
      // Prefer the next letter right after the previous one; else the first one further on.
      at = line[at + 1] === word[i] ? at + 1 : line.indexOf(word[i]!, at + 1);
      if (at < 0) break;
      positions.push(at);
    }
    if (positions.length < word.length) break; // later starts cannot do better
    let score = 0;
    for (let i = 0; i < positions.length; i++) {
      const p = positions[i]!;
      if (i > 0 && p === positions[i - 1]! + 1) score += CONSECUTIVE;
      if (p === 0 || !/[\p{L}\p{N}]/u.test(line[p - 1]!)) score += WORD_START;
    }
    if (!best || score > best.score) best = { score, positions };
  }
  return best;
}

/** One line against the query: its score and matched positions, or undefined when it does not match. */
export function fuzzyScore(query: string, line: string): { score: number; positions: number[] } | undefined {
  const words = query.toLowerCase().split(/\s+/u).filter((w) => w !== '');
  if (words.length === 0) return { score: 0, positions: [] };
  const lower = line.toLowerCase();
  let score = 0;
  const positions = new Set<number>();
  for (const word of words) {
    const found = matchWord(word, lower, 0);
    if (!found) return undefined;
    score += found.score;
    for (const p of found.positions) positions.add(p);
  }
  const sorted = [...positions].sort((a, b) => a - b);
  score -= Math.min(sorted[0] ?? 0, LEADING_PENALTY_CAP);
  score -= line.length / 100;
  return { score, positions: sorted };
}

/** The lines matching `query`, best first (ties in the lines' order). */
export function fuzzyFilter(query: string, lines: readonly string[]): FuzzyMatch[] {
  const matches: FuzzyMatch[] = [];
  lines.forEach((line, index) => {
    const found = fuzzyScore(query, line);
    if (found) matches.push({ index, ...found });
  });
  if (query.trim() === '') return matches;
  return matches.sort((a, b) => b.score - a.score || a.index - b.index);
}
