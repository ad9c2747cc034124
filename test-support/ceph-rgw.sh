#!/usr/bin/env bash
# A throwaway single-node Ceph RADOS Gateway for the S3 tests: one monitor, one OSD on
# memstore (objects live in RAM; only config and logs go to disk), one radosgw, cephx
# off, everything bound to 127.0.0.1 and kept under one directory. Starts in ~1-2 s.
#
#   ceph-rgw.sh start DIR RGW_PORT MON_PORT [OWNER_PID]
#       Starts the daemons in DIR (which must be empty or absent), creates an S3 user and
#       prints "endpoint=... access_key=... secret_key=...". With OWNER_PID, a watchdog
#       stops everything and removes DIR once that process is gone, so an interrupted or
#       killed test run leaves no daemons behind.
#   ceph-rgw.sh stop DIR
#       Stops the daemons and the watchdog started from DIR, by their pid files.
#
# Needs radosgw, ceph-mon, ceph-osd, ceph-common, uuid-runtime and curl
# (scripts/ensure-test-deps.sh installs them).
set -euo pipefail
usage="usage: ceph-rgw.sh start DIR RGW_PORT MON_PORT [OWNER_PID] | stop DIR"
cmd=${1:?$usage}
D=$(realpath -m "${2:?$usage}")
export CEPH_CONF=$D/ceph.conf
ACCESS_KEY=HOARDTESTACCESSKEY
SECRET_KEY=hoard-test-secret-key

# SIGKILL: the data is throwaway, and on SIGTERM the memstore OSD would first write its
# whole RAM store to disk.
stop_daemons() {
  local name f pid
  for name in client.rgw.a osd.0 mon.a; do
    f=$D/run/$name.pid
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; fi
    rm -f "$f"
  done
}

stop() {
  if [ -f "$D/run/watchdog.pid" ]; then
    kill "$(cat "$D/run/watchdog.pid")" 2>/dev/null || true
    rm -f "$D/run/watchdog.pid"
  fi
  stop_daemons
}

watchdog() {
  local owner=$1
  while kill -0 "$owner" 2>/dev/null; do sleep 1; done
  stop_daemons
  rm -rf "$D"
}

fail() {
  echo "ceph-rgw: $* (logs in $D/log)" >&2
  exit 1
}

# wait_for TENTHS COMMAND...: runs COMMAND every 0.1 s until it succeeds, at most TENTHS times.
wait_for() {
  local tries=$1
  shift
  for _ in $(seq 1 "$tries"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  return 1
}

osd_up() { ceph osd stat 2>/dev/null | grep -q '1 up'; }

start() {
  local port=${1:?$usage} monport=${2:?$usage} owner=${3:-}
  mkdir -p "$D"/{run,log,crash,mon,osd/0}
  if [ -n "$owner" ]; then
    # setsid: outside the test run's process group, so a Ctrl-C or a group kill of the
    # run does not take the watchdog down before it has cleaned up.
    setsid bash "$0" watchdog "$D" "$owner" </dev/null >/dev/null 2>&1 &
    echo $! >"$D/run/watchdog.pid"
  fi
  local fsid
  fsid=$(uuidgen)
  cat >"$D/ceph.conf" <<CONF
[global]
fsid = $fsid
mon_host = v2:127.0.0.1:$monport
mon_initial_members = a
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
auth_allow_insecure_global_id_reclaim = true
run_dir = $D/run
crash_dir = $D/crash
admin_socket = $D/run/\$name.asok
log_file = $D/log/\$name.log
pid_file = $D/run/\$name.pid
mon_data = $D/mon/\$name
osd_data = $D/osd/\$id
keyring = /dev/null
osd_objectstore = memstore
memstore_device_bytes = 4294967296
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
# Commit monitor updates at once instead of batching them for 1 s: radosgw's first
# start creates its pools with a dozen updates in a row, which takes 9 s otherwise.
paxos_propose_interval = 0.01
paxos_min_wait = 0.001
osd_crush_chooseleaf_type = 0
osd_memory_target = 1073741824
ms_bind_ipv6 = false
[client.rgw.a]
ms_mon_client_mode = crc
auth_client_required = none
rgw_frontends = beast endpoint=127.0.0.1:$port tcp_nodelay=1
CONF
  monmaptool --create --add a "v2:127.0.0.1:$monport" --fsid "$fsid" "$D/monmap" >>"$D/log/setup.log" 2>&1 || fail "monmaptool failed"
  ceph-mon --mkfs -i a --monmap "$D/monmap" >>"$D/log/setup.log" 2>&1 || fail "ceph-mon --mkfs failed"
  ceph-mon -i a >>"$D/log/setup.log" 2>&1 || fail "ceph-mon did not start"
  local osd_uuid
  osd_uuid=$(uuidgen)
  # The first command also waits for the monitor; `osd new` with one uuid is idempotent.
  wait_for 300 ceph --connect-timeout 3 osd new "$osd_uuid" || fail "the monitor did not answer on 127.0.0.1:$monport"
  ceph-osd -i 0 --mkfs --osd-uuid "$osd_uuid" >>"$D/log/setup.log" 2>&1 || fail "ceph-osd --mkfs failed"
  ceph-osd -i 0 >>"$D/log/setup.log" 2>&1 || fail "ceph-osd did not start"
  wait_for 600 osd_up || fail "the OSD did not come up"
  radosgw -n client.rgw.a >>"$D/log/setup.log" 2>&1 || fail "radosgw did not start"
  wait_for 900 curl -sf -o /dev/null "http://127.0.0.1:$port/" || fail "radosgw did not answer on 127.0.0.1:$port"
  radosgw-admin user create --uid=hoard-test --display-name=hoard-test \
    --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >>"$D/log/setup.log" 2>&1 || fail "radosgw-admin user create failed"
  echo "endpoint=http://127.0.0.1:$port access_key=$ACCESS_KEY secret_key=$SECRET_KEY"
}

case $cmd in
  start) shift 2; start "$@" ;;
  stop) stop ;;
  watchdog) watchdog "${3:?$usage}" ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
