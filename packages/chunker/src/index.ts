export { ChunkerParameterError, IndexFormatError, formatBytes } from './errors.js';
