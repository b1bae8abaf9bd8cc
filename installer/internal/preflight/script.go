package preflight

import (
	"strconv"
	"strings"

	"github.com/garrison-chat/garrison/installer/internal/remote"
)

// scriptVersion is printed first by the script; parse refuses output of
// another version (a mismatched garrisonctl would misread it).
const scriptVersion = "1"

// fsyncWrites is how many synchronous 8 KiB writes the fsync probe makes,
// and fsyncLimitSeconds how long it may take before it is stopped.
const (
	fsyncWrites       = 50
	fsyncLimitSeconds = 60
)

// probe is what the script looks at on one node besides the fixed facts.
type probe struct {
	// Names are host names to resolve: the other nodes' names and the
	// addresses that are names rather than IPs.
	Names []string
	// Drives are the node's MinIO drives, in inventory order.
	Drives []string
	// Ports are the port numbers to find the owners of.
	Ports []int
	// noSS makes the script read /proc even where ss exists (tests of the
	// fallback).
	noSS bool
}

// scriptHead defines the helpers. The script never stops on an error: a
// part that cannot run prints err=<section> <reason> and the next part
// goes on, so one missing tool costs one check, not all of them.
const scriptHead = `# garrisonctl preflight: read-only checks (but for short-lived probe files in /var/lib and the drives)
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
LC_ALL=C
export PATH LC_ALL
kv() { printf '%s=%s\n' "$1" "$2"; }
oneline() { printf '%s' "$1" | tr '\n' ' '; }
has() { command -v "$1" >/dev/null 2>&1; }
tm() { _t=$1; shift; if has timeout; then timeout "$_t" "$@"; else "$@"; fi; }
`

// scriptBody gathers the facts. Output is key=value lines; keys repeat
// for lists.
const scriptBody = `if [ -r /etc/os-release ]; then
  (. /etc/os-release; kv os_id "$ID"; kv os_version_id "$VERSION_ID"; kv os_pretty "$PRETTY_NAME")
else
  kv err "os /etc/os-release is missing"
fi
if has dpkg; then
  kv arch "$(dpkg --print-architecture 2>&1 | head -n 1)"
else
  kv err "os dpkg is missing (uname -m says $(uname -m))"
fi
if has dpkg-query; then
  kv installed "$(dpkg-query -W -f='${Status}' garrisonctl 2>/dev/null)"
fi
if has nproc; then kv nproc "$(nproc)"; else kv err "cpu nproc is missing"; fi
if [ -r /proc/meminfo ]; then
  while read -r k v u; do [ "$k" = MemTotal: ] && kv mem_kb "$v"; done < /proc/meminfo
else
  kv err "memory /proc/meminfo is not readable"
fi
fsinfo() {
  if d=$(tm 10 stat -c %d "$2" 2>&1) && s=$(tm 10 stat -f -c '%S %b %a' "$2" 2>&1); then
    kv fs "$1 $d $s"
  else
    kv err "disk $2: $(oneline "$d $s")"
  fi
}
fsinfo root /
fsinfo varlib /var/lib
i=0
for d in {{drives}}; do
  if [ -d "$d" ]; then
    w=0
    t="$d/.garrison-preflight.$$"
    if tm 10 touch "$t" 2>/dev/null; then w=1; rm -f "$t"; fi
    if dev=$(tm 10 stat -c %d "$d" 2>&1) && s=$(tm 10 stat -f -c '%S %b %a' "$d" 2>&1); then
      kv drive "$i dir $dev $s $w"
    else
      kv drive "$i error $(oneline "$dev $s")"
    fi
  elif [ -e "$d" ] || [ -L "$d" ]; then
    kv drive "$i notdir"
  else
    p=$d
    while [ ! -e "$p" ]; do p=${p%/*}; [ -n "$p" ] || p=/; done
    kv drive "$i missing $(stat -c %d "$p" 2>/dev/null) $p"
  fi
  i=$((i + 1))
done
if has getent; then
  # All at once, so that a dead DNS server costs 5 s, not 5 s a name; each
  # answer is one short write, which a pipe keeps whole.
  for n in {{names}}; do
    (a=$(tm 5 getent ahosts "$n" 2>/dev/null | while read -r ip rest; do printf '%s ' "$ip"; done)
     kv resolve "$n $a") &
  done
  wait
elif [ -n "$NAMES" ]; then
  kv err "names getent is missing"
fi
kv port_range "$(oneline "$(cat /proc/sys/net/ipv4/ip_local_port_range 2>&1)")"
kv port_reserved "$(oneline "$(cat /proc/sys/net/ipv4/ip_local_reserved_ports 2>/dev/null)")"
procports() {
  kv ports_source proc
  want=
  for f in tcp tcp6 udp udp6; do
    [ -r /proc/net/$f ] || continue
    while read -r sl local rem st rest; do
      case $f$st in tcp*0A|udp*07) ;; *) continue ;; esac
      port=$((0x${local##*:}))
      case " $PORTS " in *" $port "*) ;; *) continue ;; esac
      set -- $rest
      kv sock "${f%6} $local $6"
      want="$want $6"
    done < /proc/net/$f
  done
  [ -n "$want" ] || return 0
  ls -l /proc/[0-9]*/fd 2>/dev/null | while IFS= read -r l; do
    case $l in
    /proc/*/fd:) pid=${l#/proc/}; pid=${pid%/fd:} ;;
    *'-> socket:['*']')
      ino=${l##*"socket:["}; ino=${ino%"]"}
      case " $want " in *" $ino "*) kv owner "$ino $pid $(cat /proc/$pid/comm 2>/dev/null)" ;; esac ;;
    esac
  done
}
if [ -n "$PORTS" ]; then
  if [ -z "$NOSS" ] && has ss; then
    if out=$(ss -Hltnup 2>&1); then
      kv ports_source ss
      printf '%s\n' "$out" | while IFS= read -r l; do [ -z "$l" ] || kv ss "$l"; done
    else
      kv err "ports ss -Hltnup failed: $(oneline "$out"); read /proc instead"
      procports
    fi
  else
    procports
  fi
fi
if has dd; then
  syncf=/var/lib/.garrison-fsync.$$
  trap 'rm -f "$syncf"' EXIT
  s=$(date +%s%N)
  out=$(tm $SYNCLIMIT dd if=/dev/zero of="$syncf" bs=8k count=$WRITES oflag=dsync 2>&1)
  rc=$?
  e=$(date +%s%N)
  if [ $rc -eq 0 ]; then
    kv fsync "$((e - s)) $WRITES"
  elif [ $rc -eq 124 ]; then
    kv fsync_timeout "$SYNCLIMIT $WRITES"
  else
    kv err "fsync dd on /var/lib failed: $(oneline "$out")"
  fi
  rm -f "$syncf"
else
  kv err "fsync dd is missing"
fi
kv time "$(date +%s.%N)"
`

// script is the whole gather script for p.
func script(p probe) string {
	var b strings.Builder
	b.WriteString(scriptHead)
	b.WriteString("kv version " + scriptVersion + "\n")
	words := func(ss []string) string {
		q := make([]string, len(ss))
		for i, s := range ss {
			q[i] = remote.Quote(s)
		}
		return strings.Join(q, " ")
	}
	// The lists go into the for loops as quoted words rather than
	// variables, so that no value is split or globbed.
	body := strings.NewReplacer("{{drives}}", words(p.Drives), "{{names}}", words(p.Names)).Replace(scriptBody)
	ports := make([]string, len(p.Ports))
	for i, n := range p.Ports {
		ports[i] = strconv.Itoa(n)
	}
	b.WriteString("NAMES=" + remote.Quote(strings.Join(p.Names, " ")) + "\n")
	b.WriteString("PORTS=" + remote.Quote(strings.Join(ports, " ")) + "\n")
	b.WriteString("WRITES=" + strconv.Itoa(fsyncWrites) + "\n")
	b.WriteString("SYNCLIMIT=" + strconv.Itoa(fsyncLimitSeconds) + "\n")
	if p.noSS {
		b.WriteString("NOSS=1\n")
	} else {
		b.WriteString("NOSS=\n")
	}
	b.WriteString(body)
	return b.String()
}
