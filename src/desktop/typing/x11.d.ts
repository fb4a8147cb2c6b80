// node-x11 ships no types; xtest.ts describes the little of it that it uses.
declare module 'x11';
