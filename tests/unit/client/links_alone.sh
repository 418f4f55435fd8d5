#!/bin/sh
# The client library carries no node code: no symbol that its archives
# define or need belongs to the store, the server, the cluster or their
# libraries (ck, roaring, mimalloc, liburing). The structure of the build
# already makes distroctl fail to link if the client needed such code;
# this catches the other way back, a node library linked into the client.
#
# Usage: links_alone.sh libdistro_client.a libdistro_wire.a
set -eu
node='^(store_|worker_|peer_|xcore_|outbox_|uring_|epoch_|pool_|mem_|intern_|members_|slotmap_|pwire_|records_|auth_|admin_|metrics_|status_|config_|log_|ck_|roaring_|mi_|io_uring_)'
bad=$(nm -A "$@" | awk '{ print $NF }' | grep -E "$node" | sort -u || true)
if [ -n "$bad" ]; then
	echo "node code in the client library:" >&2
	echo "$bad" >&2
	exit 1
fi
echo "the client library links no node code ($*)"
