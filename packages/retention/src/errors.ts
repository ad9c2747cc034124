/**
 * A retention rule a user wrote that cannot be applied; the message says what to write.
 * `code` is of hoard's error table (@hoard/errors, docs/errors.md), a plain literal because
 * this package depends on nothing of hoard's; a test checks that the table lists it.
 */
export class RetentionRuleError extends Error {
  override readonly name = 'RetentionRuleError';
  readonly code = 'invalid_retention';
}
