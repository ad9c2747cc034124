/**
 * The `@hoard/protocol/agent` entry: what the agent daemon runs on (the client entry, the
 * binary batch framing, the chunker spec from the wire, upload throttles, run messages)
 * without the routes' TypeBox schemas and the policy documents' YAML parser that the
 * package index brings to every importer. An agent is a guest on a production host: those
 * two alone are ~10 MiB of its resident memory (measured: importing the package index
 * takes a bare Node from 41 to 58 MiB RSS, this entry from 41 to ~47) and it needs neither.
 */
export * from './client-entry.js';
export * from './wire.js';
export * from './throttle.js';
export * from './chunker-wire.js';
export * from './messages.js';
export { parseBandwidth, type Bandwidth } from './policy/units.js';
