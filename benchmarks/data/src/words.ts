/**
 * Small fixed vocabularies shared by the text pages and the SQL rows. Fixed (not generated
 * from the seed) because real text draws on one language: the seed changes which words
 * appear where, not the language itself.
 */

// Ordered roughly by frequency: samplers apply a Zipf law over the index, as word
// frequencies in natural and technical text follow one (Zipf 1949; Piantadosi 2014).
export const WORDS: readonly string[] = (
  'the of and to a in is for that on with as it be by this are from at or an not ' +
  'was which can if all but has have will one more their new when other also there ' +
  'data file user time server request error value system service config process cache ' +
  'update default using should after before first used only into any each than then ' +
  'network memory disk write read block page index table query commit session client ' +
  'connection timeout retry failed success status start stop running version build ' +
  'module package source output input buffer stream thread worker queue event handler ' +
  'message response header body path local remote backup restore snapshot volume node ' +
  'cluster host port address key token account group policy rule limit size count total ' +
  'check enable disable allow deny warning notice debug trace info level state change ' +
  'object array string number list map set get put delete create remove insert select ' +
  'between because through during without within against among around under again ' +
  'order customer invoice payment product price amount currency shipping report daily ' +
  'weekly monthly schedule job task agent driver kernel device mount partition sector'
).split(' ');

export const FIRST_NAMES: readonly string[] = (
  'James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara ' +
  'Richard Susan Joseph Jessica Thomas Sarah Carlos Karen Daniel Lisa Matthew Nancy Anthony ' +
  'Betty Mark Sandra Donald Ashley Steven Kimberly Paul Emily Andrew Donna Joshua Michelle ' +
  'Kenji Aiko Wei Mei Arjun Priya Olga Ivan Fatima Omar Lars Ingrid Pierre Amelie Hans Greta ' +
  'Mateo Sofia Kwame Amara Sean Siobhan Luca Giulia'
).split(' ');

export const LAST_NAMES: readonly string[] = (
  'Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez ' +
  'Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White ' +
  'Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Nguyen ' +
  "O'Brien O'Connor D'Angelo Tanaka Sato Wang Li Zhang Patel Sharma Ivanova Petrov Haddad " +
  'Mansour Larsen Nilsen Dubois Moreau Schmidt Fischer Rossi Bianchi Mensah Okafor Murphy Kelly'
).split(' ');

export const CITIES: readonly string[] = (
  'London Paris Berlin Madrid Rome Lisbon Dublin Amsterdam Brussels Vienna Prague Warsaw ' +
  'Stockholm Oslo Helsinki Copenhagen Zurich Geneva Milan Munich Hamburg Lyon Porto Seville ' +
  'Toronto Montreal Vancouver Boston Chicago Denver Seattle Austin Atlanta Miami Phoenix ' +
  'Tokyo Osaka Seoul Singapore Sydney Melbourne Auckland Mumbai Delhi Lagos Nairobi Cairo'
).split(' ');

export const COUNTRIES: readonly string[] = 'GB FR DE ES IT PT IE NL BE AT CZ PL SE NO FI DK CH US CA JP KR SG AU NZ IN NG KE EG'.split(' ');

export const HOSTS: readonly string[] = 'web-01 web-02 db-01 db-02 cache-01 app-01 app-02 app-03 batch-01 mail-01'.split(' ');

export const PROCS: readonly string[] = 'sshd systemd kernel nginx postgres cron dockerd kubelet app-server backup-agent'.split(' ');

export const LEVELS: readonly string[] = 'INFO INFO INFO INFO DEBUG DEBUG WARN ERROR'.split(' ');

/**
 * A 4096-entry lookup table realising a Zipf(s=1) law over n items: one random draw and
 * one array read per word, because the text generators pick millions of words.
 */
export function zipfTable(n: number): Uint16Array {
  const table = new Uint16Array(4096);
  let total = 0;
  for (let r = 0; r < n; r++) total += 1 / (r + 1);
  let acc = 0;
  let slot = 0;
  for (let r = 0; r < n; r++) {
    acc += 1 / (r + 1) / total;
    const end = Math.round(acc * 4096);
    for (; slot < end; slot++) table[slot] = r;
  }
  for (; slot < 4096; slot++) table[slot] = n - 1;
  return table;
}
