/** AES-256-GCM framing of sealed blobs (docs/format.md, "Blobs"): nonce || ciphertext || tag. */
export const GCM_NONCE_BYTES = 12;
export const GCM_TAG_BYTES = 16;
