#!/usr/bin/env bash
# A GlusterFS volume shared by two "hosts", for spec/glusterfs.spec.ts.
#
#   run.sh WORKDIR VOLUME_TYPE CONFIG      VOLUME_TYPE: one-brick | replica-2
#                                          CONFIG: default | coherent
#
# Brings up, each in its own network, mount, UTS and PID namespaces:
#   server  glusterd and the brick daemons, bricks and state on a private
#           tmpfs, brick address 10.77.0.1 (on the namespace's own loopback
#           interface: gluster refuses 127.0.0.1 and localhost)
#   host-a  the FUSE client, the volume mounted at WORKDIR/mnt, 10.77.1.2
#   host-b  the same, 10.77.2.2
# Every address lives inside these namespaces; the host's network is not
# touched. Then prints one line
#   READY {"server":PID,"a":PID,"b":PID,"mount":"WORKDIR/mnt"}
# (PIDs to nsenter into) and waits until its stdin closes or it gets a
# signal; then tears everything down: each namespace's init is killed, which
# ends every process of its PID namespace (glusterd, bricks, FUSE clients),
# the mounts go with their mount namespaces, and the veths with their
# network namespaces. Installs nothing: needs root, /dev/fuse, unshare,
# nsenter, ip and Debian's glusterfs-server and glusterfs-client.
set -euo pipefail

work=${1:?WORKDIR}
type=${2:?VOLUME_TYPE}
config=${3:-coherent}
mnt="$work/mnt"
log="$work/run.log"
mkdir -p "$mnt"
exec 3>&1 >>"$log" 2>&1

pids=()
teardown() {
  trap - EXIT INT TERM HUP PIPE
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  done
  # the veths die with their namespaces; these only matter if setup stopped half-way
  for link in "${links[@]}"; do ip link del "$link" 2>/dev/null || true; done
}
links=()
trap teardown EXIT
trap 'exit 130' INT TERM HUP PIPE

# A namespace holder: PID 1 of new PID, mount, UTS and network namespaces;
# sets the variable named $2 to its pid as seen from here.
holder() {
  local name=$1 outer inner=""
  unshare --pid --fork --kill-child --mount-proc --mount --uts --net --propagation private \
    sh -c "hostname $name; exec sleep infinity" </dev/null 3>&- &
  outer=$!
  pids+=("$outer")
  for _ in $(seq 200); do
    inner=$(pgrep -P "$outer" -x sleep || true)
    [ -n "$inner" ] && break
    sleep 0.02
  done
  [ -n "$inner" ] || { echo "holder $name did not start"; exit 1; }
  # killing the namespace's init ends every process in its PID namespace
  pids+=("$inner")
  printf -v "$2" '%s' "$inner"
}

in_ns() {
  local pid=$1
  shift
  nsenter -t "$pid" -n -m -u -p -- "$@" </dev/null 3>&-
}

holder gl-server server
holder host-a host_a
holder host-b host_b

tag=$$
for side in a b; do
  [ "$side" = a ] && host=$host_a || host=$host_b
  [ "$side" = a ] && net=1 || net=2
  ip link add "gs$side$tag" type veth peer name "gh$side$tag"
  links+=("gs$side$tag")
  ip link set "gs$side$tag" netns "$server"
  ip link set "gh$side$tag" netns "$host"
  in_ns "$server" ip addr add "10.77.$net.1/24" dev "gs$side$tag"
  in_ns "$server" ip link set "gs$side$tag" up
  in_ns "$host" ip addr add "10.77.$net.2/24" dev "gh$side$tag"
  in_ns "$host" ip link set "gh$side$tag" up
  in_ns "$host" ip link set lo up
  in_ns "$host" ip route add default via "10.77.$net.1"
done
in_ns "$server" ip link set lo up
in_ns "$server" ip addr add 10.77.0.1/32 dev lo

# glusterd's state, logs, sockets and the bricks: private tmpfs in the server's mount namespace
in_ns "$server" sh -c '
  mount -t tmpfs -o size=512m gl-state /var/lib/glusterd
  mkdir -p /var/log/glusterfs && mount -t tmpfs gl-log /var/log/glusterfs
  mount -t tmpfs gl-run /run && mkdir -p /run/gluster
  mkdir -p /bricks 2>/dev/null || true
  mount -t tmpfs -o size=1g gl-bricks /srv 2>/dev/null || mount -t tmpfs -o size=1g gl-bricks /mnt
'
bricks=/srv
in_ns "$server" sh -c 'mountpoint -q /srv' || bricks=/mnt
in_ns "$server" glusterd
for _ in $(seq 100); do
  in_ns "$server" gluster --mode=script pool list >/dev/null 2>&1 && break
  sleep 0.1
done

volume=gv
case "$type" in
  one-brick) in_ns "$server" gluster --mode=script volume create $volume "10.77.0.1:$bricks/b1" force ;;
  replica-2) in_ns "$server" gluster --mode=script volume create $volume replica 2 \
    "10.77.0.1:$bricks/b1" "10.77.0.1:$bricks/b2" force ;;
  distribute-2) in_ns "$server" gluster --mode=script volume create $volume \
    "10.77.0.1:$bricks/b1" "10.77.0.1:$bricks/b2" force ;;
  *) echo "unknown volume type $type"; exit 2 ;;
esac

mount_options=
if [ "$config" = coherent ]; then
  # every client cache that can answer a lookup or a listing from memory, off
  for option in performance.stat-prefetch performance.quick-read performance.io-cache \
    performance.read-ahead performance.readdir-ahead performance.parallel-readdir \
    performance.open-behind performance.nl-cache performance.write-behind \
    performance.client-io-threads; do
    in_ns "$server" gluster --mode=script volume set $volume "$option" off
  done
  in_ns "$server" gluster --mode=script volume set $volume performance.md-cache-timeout 0
  mount_options=attribute-timeout=0,entry-timeout=0,negative-timeout=0,use-readdirp=no
fi
in_ns "$server" gluster --mode=script volume start $volume

for host in "$host_a" "$host_b"; do
  in_ns "$host" mount -t glusterfs ${mount_options:+-o "$mount_options"} "10.77.0.1:/$volume" "$mnt"
done
in_ns "$host_a" sh -c "mountpoint -q '$mnt'"
in_ns "$host_b" sh -c "mountpoint -q '$mnt'"

echo "READY {\"server\":$server,\"a\":$host_a,\"b\":$host_b,\"mount\":\"$mnt\",\"log\":\"$log\"}" >&3
# until the spec closes our stdin (or dies, which closes it too)
cat >/dev/null || true
