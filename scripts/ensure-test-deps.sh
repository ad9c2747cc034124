#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, only when their binaries are
# missing, so that `npm test` works on a fresh Debian machine that has only Node and npm
# (as root; apt-get runs only when something is missing).
#
# DEPS lists binary:package pairs; a package is installed when its binary is not on PATH.
# Add a pair when a test needs another server or tool.
set -euo pipefail

DEPS=(
  # A throwaway Ceph RADOS Gateway for the S3 store tests (test-support/ceph-rgw.sh).
  radosgw:radosgw
  ceph-mon:ceph-mon
  ceph-osd:ceph-osd
  ceph:ceph-common
  radosgw-admin:ceph-common
  monmaptool:ceph-base
  uuidgen:uuid-runtime
  curl:curl
  # The agent's sources (apps/agent/test/sources-*.test.ts): a throwaway PostgreSQL and
  # MariaDB (test-support/postgres.ts, mariadb.ts; the PostgreSQL server binaries live in
  # /usr/lib/postgresql/NN/bin, off PATH, so the server is keyed on pg_ctlcluster),
  # qcow2 images (test-support/qemu.ts) read through qemu-nbd, libvirt's test driver.
  pg_dump:postgresql-client
  pg_ctlcluster:postgresql
  mariadb-install-db:mariadb-server
  mysqldump:mariadb-client
  qemu-img:qemu-utils
  qemu-nbd:qemu-utils
  qemu-io:qemu-utils
  virsh:libvirt-clients
  # The validity report's PDF (apps/cli/test/report-validity-cli.test.ts): printed by a
  # headless chromium, checked with pdftoppm and pdftotext.
  chromium:chromium
  pdftoppm:poppler-utils
)

missing=()
for dep in "${DEPS[@]}"; do
  binary=${dep%%:*}
  package=${dep#*:}
  if ! command -v "$binary" >/dev/null 2>&1; then
    # Each package once, however many of its binaries are missing.
    [[ " ${missing[*]-} " == *" $package "* ]] || missing+=("$package")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi

if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-test-deps: the tests need Debian packages that are not installed: ${missing[*]}" >&2
  echo "ensure-test-deps: install them as root: apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-test-deps: the tests need ${missing[*]}, and there is no apt-get to install them (Debian or Ubuntu expected)" >&2
  exit 1
fi

echo "ensure-test-deps: installing ${missing[*]}"
log=${TMPDIR:-/tmp}/hoard-ensure-test-deps.log
export DEBIAN_FRONTEND=noninteractive
apt_install() { apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$log" 2>&1; }
: >"$log"
# The package lists are refreshed only when the install fails (a fresh machine has none,
# or they are stale), to keep the usual run free of network round trips.
if ! apt_install; then
  if ! apt-get update -q >>"$log" 2>&1 || ! apt_install; then
    echo "ensure-test-deps: installing ${missing[*]} failed; the end of $log:" >&2
    tail -n 20 "$log" >&2
    exit 1
  fi
fi
