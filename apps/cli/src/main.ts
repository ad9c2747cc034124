#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { runDemo } from './commands/demo.js';
import { EXIT_FAILURE, EXIT_USAGE, UsageError } from './errors.js';
import { ChunkerParameterError } from '@hoard/chunker';

const program = new Command();
program
  .name('hoard')
  .description('hoard: backup orchestration with content-defined deduplication')
  .exitOverride()
  .showHelpAfterError('(run with --help for usage)');

program
  .command('demo')
  .description('generate a small VM-image and database-dump series, chunk it, and print the dedup figures')
  .option('--json', 'print the figures as one JSON object')
  .addHelpText(
    'after',
    '\nExample:\n  hoard demo            # a table of each day: size, chunks, new bytes, dedup so far\n  hoard demo --json     # the same figures for scripts\n',
  )
  .action(async (opts: { json?: boolean }) => {
    await runDemo({ json: Boolean(opts.json), out: (s) => process.stdout.write(`${s}\n`) });
  });

async function main(): Promise<number> {
  try {
    await program.parseAsync(process.argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander already printed the message (or the help text)
      return err.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    if (err instanceof UsageError || err instanceof ChunkerParameterError) {
      process.stderr.write(`hoard: ${err.message}\n`);
      return EXIT_USAGE;
    }
    process.stderr.write(`hoard: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return EXIT_FAILURE;
  }
}

main().then((code) => process.exit(code));
