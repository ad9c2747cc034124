/**
 * Finding the database programs the agent runs (pg_dump, mysqldump): the lookup lives in
 * @hoard/repository (database/programs.ts), shared with the restores into a database of
 * the CLI and the media server's restore drill.
 */
export { findInDirs, findPostgresProgram, findProgram, pathDirs, postgresBinDirs } from '@hoard/repository';
