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
}

const CONSECUTIVE = 8;
const WORD_START = 6;
const LEADING_PENALTY_CAP = 10;

/** The best match of one word in `line` (greedy from each possible start): its score and where its first letter is, or undefined. */
function matchWord(word: string, line: string): { score: number; first: number } | undefined {
  let best: { score: number; first: number } | undefined;
  for (let start = line.indexOf(word[0]!); start >= 0; start = line.indexOf(word[0]!, start + 1)) {
    const positions = [start];
    // Each next letter at its first place after the previous one: right after it when it is there.
    for (let i = 1, at = start; i < word.length; i++) {
      at = line.indexOf(word[i]!, at + 1);
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
    if (!best || score > best.score) best = { score, first: start };
  }
  return best;
}

/** One line's score against the query, or undefined when it does not match. */
export function fuzzyScore(query: string, line: string): number | undefined {
  const words = query.toLowerCase().split(/\s+/u).filter((w) => w !== '');
  if (words.length === 0) return 0;
  const lower = line.toLowerCase();
  let score = 0;
  let first = Infinity;
  for (const word of words) {
    const found = matchWord(word, lower);
    if (!found) return undefined;
    score += found.score;
    first = Math.min(first, found.first);
  }
  return score - Math.min(first, LEADING_PENALTY_CAP) - line.length / 100;
}

/** The lines matching `query`, best first (ties in the lines' order, so an empty query keeps them all as given). */
export function fuzzyFilter(query: string, lines: readonly string[]): FuzzyMatch[] {
  const matches: FuzzyMatch[] = [];
  lines.forEach((line, index) => {
    const score = fuzzyScore(query, line);
    if (score !== undefined) matches.push({ index, score });
  });
  return matches.sort((a, b) => b.score - a.score || a.index - b.index);
}
