export {
  ERROR_CODES,
  EXIT_CODES,
  errorCodeOf,
  exitCodeOf,
  httpStatusOf,
  isErrorCode,
  HoardError,
  type ErrorCode,
  type ErrorCodeInfo,
  type ExitClass,
} from './codes.js';
export { AGENT_NAME, JOB_NAME, type NameRule } from './names.js';
