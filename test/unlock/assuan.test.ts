// Assuan's escaping and answers, as libassuan defines them: %, CR and LF travel as %XX; ERR codes
// carry the error source in the top byte (pinentry's Cancel is 83886179 = source 5, code 99).
import { describe, expect, it } from 'vitest';
import { escapeParameter, isCancel, parseServerLine, unescapeData } from '../../src/desktop/secret-prompt/assuan.js';

describe('Assuan lines', () => {
  it('escapes %, CR and LF in parameters and undoes %XX in data, byte-wise (UTF-8 kept)', () => {
    expect(escapeParameter('50% off\r\nnow')).toBe('50%25 off%0D%0Anow');
    expect(unescapeData('p%25ss%0Aword').toString('utf8')).toBe('p%ss\nword');
    expect(unescapeData('%C3%A9t%C3%A9').toString('utf8')).toBe('été');
    expect(unescapeData('100%').toString('utf8')).toBe('100%');
  });

  it('parses OK, ERR, D, S, comments and INQUIRE; cancel codes with and without a source', () => {
    expect(parseServerLine('OK Pleased to meet you')).toEqual({ kind: 'ok', text: 'Pleased to meet you' });
    expect(parseServerLine('ERR 83886179 Operation cancelled <Pinentry>')).toEqual({ kind: 'err', code: 83886179, text: 'Operation cancelled <Pinentry>' });
    expect(parseServerLine('D abc')).toEqual({ kind: 'data', data: 'abc' });
    expect(parseServerLine('S PASSWORD_FROM_CACHE')).toEqual({ kind: 'status', text: 'PASSWORD_FROM_CACHE' });
    expect(parseServerLine('# a comment')).toEqual({ kind: 'comment' });
    expect(parseServerLine('INQUIRE QUALITY abc')).toEqual({ kind: 'inquire', keyword: 'QUALITY' });
    expect(isCancel(83886179)).toBe(true);
    expect(isCancel(99)).toBe(true);
    expect(isCancel(111)).toBe(true);
    expect(isCancel(83886142)).toBe(false);
  });
});
