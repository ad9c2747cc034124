import { describe, expect, it } from 'vitest';
import { KeyFileFormatError, WrongPassphraseError, generateSecrets, unwrapSecrets, wrapSecrets } from '../dist/index.js';

const cheap = { N: 1 << 10, r: 8, p: 1 }; // tests only: the default cost is ~0.1 s per call

describe('store secrets', () => {
  it('wrap then unwrap with the passphrase gives the same secrets', async () => {
    const s = generateSecrets();
    const file = await wrapSecrets(s, 'correct horse battery staple', cheap);
    const back = await unwrapSecrets(JSON.parse(JSON.stringify(file)), 'correct horse battery staple');
    expect(Buffer.from(back.dataKey)).toEqual(Buffer.from(s.dataKey));
    expect(Buffer.from(back.fingerprintKey)).toEqual(Buffer.from(s.fingerprintKey));
    expect(back.chunkerSeed).toBe(s.chunkerSeed);
  });

  it('the default cost works (scrypt N=2^15 needs more than the default maxmem)', async () => {
    const s = generateSecrets();
    const back = await unwrapSecrets(await wrapSecrets(s, 'pw'), 'pw');
    expect(back.chunkerSeed).toBe(s.chunkerSeed);
  });

  it('a wrong passphrase or a damaged key file is a clear error, never wrong keys', async () => {
    const file = await wrapSecrets(generateSecrets(), 'right', cheap);
    await expect(unwrapSecrets(file, 'wrong')).rejects.toThrow(WrongPassphraseError);
    const w = Buffer.from(file.wrapped, 'base64');
    w[3] ^= 1;
    await expect(unwrapSecrets({ ...file, wrapped: w.toString('base64') }, 'right')).rejects.toThrow(WrongPassphraseError);
    await expect(unwrapSecrets({ ...file, version: 2 as 1 }, 'right')).rejects.toThrow(KeyFileFormatError);
    await expect(unwrapSecrets({ ...file, N: 0 }, 'right')).rejects.toThrow(/invalid scrypt N/);
    await expect(unwrapSecrets({ ...file, nonce: 'AAAA' }, 'right')).rejects.toThrow(/wrong lengths/);
    await expect(wrapSecrets(generateSecrets(), '', cheap)).rejects.toThrow(/must not be empty/);
  });

  it('every store gets different secrets', () => {
    const a = generateSecrets();
    const b = generateSecrets();
    expect(Buffer.from(a.dataKey)).not.toEqual(Buffer.from(b.dataKey));
    expect(a.chunkerSeed).not.toBe(b.chunkerSeed);
  });
});
