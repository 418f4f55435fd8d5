# perf/lib/measure.sh - what the perf scripts read from outside a process.
#
# Sourced by perf/scale, perf/soak and perf/scale-cluster. Nothing here
# starts or stops anything: it reads /proc, distroctl's STATS text (one
# "name value" per line) and distrobench's --json output, so that every
# script computes a figure the same way. Pure functions of their arguments
# and the files they name; no globals but the ones documented per function.
# shellcheck shell=bash

# count N: "2M", "200k", "1500" -> 2000000, 200000, 1500
count() {
	awk -v s="$1" 'BEGIN { m = 1; if (s ~ /[kK]$/) m = 1000; if (s ~ /M$/) m = 1000000
		sub(/[kKM]$/, "", s); printf "%d", s * m }'
}

# rss_kb PID: resident memory (VmRSS), 0 if the process is gone
rss_kb() { awk '/^VmRSS:/ { print $2; f = 1 } END { if (!f) print 0 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# fds PID: open file descriptors
fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

# cpu_ticks PID: user + system time in clock ticks (getconf CLK_TCK), 0 if gone.
# The command name may hold spaces: fields are counted after its ")".
cpu_ticks() {
	awk '{ s = $0; sub(/.*\) /, "", s); split(s, f, " "); print f[12] + f[13] }' \
		"/proc/$1/stat" 2>/dev/null || echo 0
}

# machine_busy_ticks: "busy total" clock ticks of the whole machine since boot
# (/proc/stat's cpu line; idle and iowait are not busy)
machine_busy_ticks() {
	awk '$1 == "cpu" { for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t; exit }' /proc/stat
}

# jnum FILE KEY [ANCHOR]: the first number after "KEY": that follows
# "ANCHOR": in distrobench's JSON (e.g. jnum f p99 latency_us: the first
# class's p99; jnum f created totals); empty if absent
jnum() {
	awk -v key="\"$2\":" -v anchor="${3:+\"$3\":}" '
		{ text = text $0 " " }
		END {
			s = text
			if (anchor != "") { i = index(s, anchor); if (!i) exit; s = substr(s, i) }
			i = index(s, key); if (!i) exit
			s = substr(s, i + length(key)); sub(/^ */, "", s); sub(/[,} \]].*/, "", s)
			print s
		}' "$1" 2>/dev/null
}

# stats_delta PREFIX BEFORE AFTER [BEFORE AFTER]...: for every STATS line whose
# name starts with PREFIX, "name (after - before)" summed over the pairs of
# files (a restarted node's counters start again at 0: one pair per process),
# in the order the names first appear. A file that does not exist counts as
# all zeros (a process's start).
stats_delta() {
	local prefix=$1
	shift
	while [ $# -ge 2 ]; do
		if [ -f "$1" ]; then sed 's/^/- /' "$1"; fi
		if [ -f "$2" ]; then sed 's/^/+ /' "$2"; fi
		shift 2
	done | awk -v p="$prefix" '
		index($2, p) != 1 { next }
		{ if (!($2 in v)) order[++n] = $2; v[$2] += ($1 == "-" ? -$3 : $3) }
		END { for (i = 1; i <= n; i++) print order[i], v[order[i]] }'
}

# hist_pct Q: reads "name_le_BOUND count" lines (not cumulative, ascending,
# the last bound "inf") on stdin; prints the bound of the bucket that holds
# quantile Q (0.99: the p99 is at most that), "-" when empty, then the count
hist_pct() {
	awk -v q="$1" '
		{ n++; b[n] = $1; sub(/.*_le_/, "", b[n]); c[n] = $2; tot += $2 }
		END {
			if (tot <= 0) { print "-", 0; exit }
			for (i = 1; i <= n; i++) { cum += c[i]; if (cum >= q * tot) { print b[i], tot; exit } }
		}'
}

# stat_of FILE NAME: one value from a saved STATS text, 0 if absent
stat_of() { awk -v k="$2" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }' "$1" 2>/dev/null || echo 0; }

# machine_line: the hardware, for a report
machine_line() {
	echo "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), nproc $(nproc), kernel $(uname -r), $(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM"
}
