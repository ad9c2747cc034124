/** A retention rule a user wrote that cannot be applied; the message says what to write. */
export class RetentionRuleError extends Error {
  override readonly name = 'RetentionRuleError';
}
