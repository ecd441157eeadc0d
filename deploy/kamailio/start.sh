#!/bin/sh
# Starts the reference edge with the service's address and call_control key taken from the
# environment (ANTRING_URL, ANTRING_API_KEY): they go into the http_client connection file,
# readable by this user only, so the key is on no command line. ANTRING_URL may name up to three
# replicas of the service, separated by spaces or commas: the edge tries them in turn
# (ANTRING_REPLICAS). Other arguments are Kamailio's (-A defines, see README.md).
set -eu
: "${ANTRING_URL:=http://127.0.0.1:8000}"
: "${ANTRING_API_KEY:?set ANTRING_API_KEY to an API key with role call_control}"
cfg="${KAMAILIO_CFG:-$(dirname "$0")/kamailio.cfg}"
conf="${ANTRING_HTTP_CONFIG_FILE:-${TMPDIR:-/tmp}/antring-http.cfg}"
umask 077
: >"$conf"
n=0
for url in $(echo "$ANTRING_URL" | tr ',' ' '); do
    n=$((n + 1))
    if [ "$n" -gt 3 ]; then
        echo "ANTRING_URL names more than 3 replicas: put a load balancer in front" >&2
        exit 2
    fi
    name=antring
    [ "$n" -gt 1 ] && name="antring$n"
    printf '[%s]\nurl = %s\nusername = edge\npassword = %s\n\n' "$name" "$url" "$ANTRING_API_KEY" >>"$conf"
done
exec kamailio -f "$cfg" -DD -E -A "ANTRING_HTTP_CONFIG=\"$conf\"" -A "ANTRING_REPLICAS=$n" "$@"
