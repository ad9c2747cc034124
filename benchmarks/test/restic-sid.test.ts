// The pure parts of fetching Debian unstable's restic for `pnpm bench backup`: reading
// apt sources in both formats, picking the main archive's mirror, writing the temporary
// sid sources file, and reading restic's version. apt is never run here.
// (Host names below are placeholders: example.org, as the repository never names a mirror.)
import { describe, expect, it } from 'vitest';
import {
  compareVersions,
  isolatedAptOptions,
  parseDeb822Sources,
  parseOneLineSources,
  parseResticVersion,
  pickDebianMirror,
  sidSourcesFile,
  upstreamVersion,
} from '../dist/restic-sid.js';

const DEB822 = `Types: deb
# http://snapshot.example.org/archive/debian/20250520T000000Z
URIs: http://mirror.example.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
# a comment inside a stanza
URIs: http://mirror.example.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`;

describe('parseDeb822Sources', () => {
  it('reads each stanza, skipping comments', () => {
    const s = parseDeb822Sources(DEB822);
    expect(s).toHaveLength(2);
    expect(s[0]).toEqual({
      types: ['deb'],
      uris: ['http://mirror.example.org/debian'],
      suites: ['bookworm', 'bookworm-updates'],
      components: ['main'],
      signedBy: '/usr/share/keyrings/debian-archive-keyring.gpg',
    });
    expect(s[1].suites).toEqual(['bookworm-security']);
  });

  it('drops disabled stanzas and keeps an embedded key with its lines', () => {
    const text = [
      'Types: deb deb-src',
      'URIs: https://a.example.org/debian',
      'Suites: trixie',
      'Components: main contrib',
      'Enabled: no',
      '',
      'Types: deb',
      'URIs: https://b.example.org/debian',
      'Suites: trixie',
      'Components: main',
      'Signed-By:',
      ' -----BEGIN PGP PUBLIC KEY BLOCK-----',
      ' .',
      ' mQINBF...',
      ' -----END PGP PUBLIC KEY BLOCK-----',
      'Trusted: yes',
    ].join('\n');
    const s = parseDeb822Sources(text);
    expect(s).toHaveLength(1);
    expect(s[0].uris).toEqual(['https://b.example.org/debian']);
    expect(s[0].signedBy).toBe('-----BEGIN PGP PUBLIC KEY BLOCK-----\n.\nmQINBF...\n-----END PGP PUBLIC KEY BLOCK-----');
    expect(s[0].trusted).toBe(true);
  });
});

describe('parseOneLineSources', () => {
  it('reads deb lines with and without options, skipping deb-src-only and comments', () => {
    const text = [
      '# deb http://old.example.org/debian buster main',
      'deb [arch=amd64 signed-by=/etc/apt/keyrings/debian.gpg] http://mirror.example.org/debian bookworm main contrib',
      'deb http://mirror.example.org/debian-security bookworm-security main # security',
      'deb-src http://mirror.example.org/debian bookworm main',
      '',
    ].join('\n');
    const s = parseOneLineSources(text);
    expect(s).toHaveLength(3);
    expect(s[0]).toEqual({
      types: ['deb'],
      uris: ['http://mirror.example.org/debian'],
      suites: ['bookworm'],
      components: ['main', 'contrib'],
      signedBy: '/etc/apt/keyrings/debian.gpg',
    });
    expect(s[1]).toEqual({ types: ['deb'], uris: ['http://mirror.example.org/debian-security'], suites: ['bookworm-security'], components: ['main'] });
    expect(s[2].types).toEqual(['deb-src']);
  });
});

describe('pickDebianMirror and sidSourcesFile', () => {
  it('a deb822 file: the main archive, not the security one, with its keyring', () => {
    const mirror = pickDebianMirror(parseDeb822Sources(DEB822));
    expect(mirror?.uris).toEqual(['http://mirror.example.org/debian']);
    expect(sidSourcesFile(mirror!)).toBe(
      [
        'Types: deb',
        'URIs: http://mirror.example.org/debian',
        'Suites: sid',
        'Components: main',
        'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg',
        '',
      ].join('\n'),
    );
  });

  it('a one-line sources.list whose security line comes first', () => {
    const text = 'deb http://mirror.example.org/debian-security bookworm-security main\ndeb http://mirror.example.org/debian bookworm main\n';
    const mirror = pickDebianMirror(parseOneLineSources(text));
    expect(sidSourcesFile(mirror!)).toBe('Types: deb\nURIs: http://mirror.example.org/debian\nSuites: sid\nComponents: main\n');
  });

  it('keeps an embedded key as continuation lines and Trusted', () => {
    const text =
      'Types: deb\nURIs: http://m.example.org/debian\nSuites: bookworm\nComponents: main\nSigned-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n abc\nTrusted: yes\n';
    const file = sidSourcesFile(pickDebianMirror(parseDeb822Sources(text))!);
    expect(file).toContain('Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n abc\n');
    expect(file).toContain('Suites: sid\n');
    expect(file).toContain('Trusted: yes\n');
    // It parses back to the same entry with suite sid.
    expect(parseDeb822Sources(file)[0]).toMatchObject({ suites: ['sid'], signedBy: '-----BEGIN PGP PUBLIC KEY BLOCK-----\n.\nabc', trusted: true });
  });

  it('null when there is no main archive (only security, only deb-src, or no main component)', () => {
    expect(pickDebianMirror(parseOneLineSources('deb http://m.example.org/debian-security bookworm-security main\n'))).toBeNull();
    expect(pickDebianMirror(parseOneLineSources('deb-src http://m.example.org/debian bookworm main\n'))).toBeNull();
    expect(pickDebianMirror(parseOneLineSources('deb http://m.example.org/debian bookworm contrib\n'))).toBeNull();
    expect(pickDebianMirror([])).toBeNull();
  });
});

describe('isolatedAptOptions', () => {
  it('points every apt path it writes into the temporary directory', () => {
    const o = isolatedAptOptions('/tmp/x', false);
    const values = o.filter((_, i) => i % 2 === 1);
    expect(o.filter((_, i) => i % 2 === 0).every((f) => f === '-o')).toBe(true);
    expect(values).toContain('Dir::Etc::SourceList=/tmp/x/sid.sources');
    expect(values).toContain('Dir::Etc::SourceParts=/dev/null');
    expect(values).toContain('Dir::State::Lists=/tmp/x/lists');
    expect(values).toContain('Dir::Cache=/tmp/x/cache');
    expect(values.some((v) => v.startsWith('APT::Sandbox::User'))).toBe(false);
    expect(isolatedAptOptions('/tmp/x', true)).toContain('APT::Sandbox::User=root');
  });
});

describe('restic versions', () => {
  it('parses `restic version`', () => {
    expect(parseResticVersion('restic 0.19.1 compiled with go1.26.4 on linux/amd64\n')).toBe('0.19.1');
    expect(parseResticVersion('restic 0.14.0 compiled with go1.19.8 on linux/amd64')).toBe('0.14.0');
    expect(parseResticVersion('restic 0.18.0-dev (compiled manually) compiled with go1.24 on linux/amd64')).toBe('0.18.0-dev');
    expect(parseResticVersion('borg 1.2.4')).toBeNull();
  });

  it('upstream part of a Debian version, and ordering', () => {
    expect(upstreamVersion('0.19.1-1')).toBe('0.19.1');
    expect(upstreamVersion('1:0.19.1-1+b2')).toBe('0.19.1');
    expect(upstreamVersion('0.14.0')).toBe('0.14.0');
    expect(compareVersions('0.19.1-1', '0.14.0-1')).toBeGreaterThan(0);
    expect(compareVersions('0.9.0-1', '0.19.1-1')).toBeLessThan(0);
    expect(compareVersions('0.19.1-2', '0.19.1-1')).toBeGreaterThan(0);
    expect(compareVersions('0.19.1', '0.19.1')).toBe(0);
  });
});
