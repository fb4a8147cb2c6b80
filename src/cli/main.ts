// Placeholder until the CLI lands: keeps the bundle step buildable.
console.error('keytap: the command line is not built yet.');
process.exitCode = 1;
