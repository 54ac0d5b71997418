#!/bin/sh
# iptables/ip6tables rules for the Erlang port mapper (TCP 4369), for hosts
# that do not use nftables directly. The three cases of "Hardening" in
# epmd-c(8), in a chain of their own (EPMD_C) that INPUT jumps to for port
# 4369 only, so the rest of the ruleset is left alone:
#
#   epmd-c-firewall.sh loopback                   only the host itself
#   epmd-c-firewall.sh cluster NET4 [NET6]        the cluster's subnet(s)
#   epmd-c-firewall.sh containers BRIDGE NET4 [NET6]
#                                                 containers on a bridge
#   epmd-c-firewall.sh remove                     take it all out again
#
# e.g. "cluster 10.0.0.0/24 fd00:e9d::/64", "containers docker0
# 172.17.0.0/16". Running it again replaces the rules. Loopback is always
# accepted: local nodes register through it. EPMD_PORT overrides 4369.
# Rules do not survive a reboot; save them with iptables-save /
# ip6tables-save (or netfilter-persistent) once they are right.
set -eu

port=${EPMD_PORT:-4369}
chain=EPMD_C

usage() {
	sed -n '2,17p' "$0" >&2
	exit 2
}

# Remove the jump and the chain from one of iptables/ip6tables.
remove() {
	while "$1" -w -D INPUT -p tcp --dport "$port" -j "$chain" 2>/dev/null; do
		:
	done
	"$1" -w -F "$chain" 2>/dev/null || true
	"$1" -w -X "$chain" 2>/dev/null || true
}

# An empty chain that INPUT jumps to, first, for the port.
fresh() {
	remove "$1"
	"$1" -w -N "$chain"
	"$1" -w -I INPUT 1 -p tcp --dport "$port" -j "$chain"
	"$1" -w -A "$chain" -i lo -j ACCEPT
}

# Accept one source prefix (on one interface, if given) in one family.
allow() {
	tool=$1 net=$2 dev=${3:-}
	if [ -n "$dev" ]; then
		"$tool" -w -A "$chain" -i "$dev" -s "$net" -j ACCEPT
	else
		"$tool" -w -A "$chain" -s "$net" -j ACCEPT
	fi
}

# Everything else that reached the chain is dropped.
finish() {
	"$1" -w -A "$chain" -j DROP
}

[ $# -ge 1 ] || usage
mode=$1
shift
case $mode in
loopback)
	[ $# -eq 0 ] || usage
	for t in iptables ip6tables; do fresh $t; finish $t; done
	;;
cluster)
	[ $# -ge 1 ] && [ $# -le 2 ] || usage
	fresh iptables; allow iptables "$1"; finish iptables
	fresh ip6tables
	[ $# -eq 2 ] && allow ip6tables "$2"
	finish ip6tables
	;;
containers)
	[ $# -ge 2 ] && [ $# -le 3 ] || usage
	fresh iptables; allow iptables "$2" "$1"; finish iptables
	fresh ip6tables
	[ $# -eq 3 ] && allow ip6tables "$3" "$1"
	finish ip6tables
	;;
remove)
	[ $# -eq 0 ] || usage
	remove iptables
	remove ip6tables
	;;
*)
	usage
	;;
esac
