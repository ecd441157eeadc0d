#!/bin/sh
# Starts the reference edge with the service's address and call_control key taken from the
# environment (ANTRING_URL, ANTRING_API_KEY): they go into the http_client connection file,
# readable by this user only, so the key is on no command line. Other arguments are Kamailio's
# (-A defines, see README.md).
set -eu
: "${ANTRING_URL:=http://127.0.0.1:8000}"
: "${ANTRING_API_KEY:?set ANTRING_API_KEY to an API key with role call_control}"
cfg="${KAMAILIO_CFG:-$(dirname "$0")/kamailio.cfg}"
conf="${ANTRING_HTTP_CONFIG_FILE:-${TMPDIR:-/tmp}/antring-http.cfg}"
umask 077
printf '[antring]\nurl = %s\nusername = edge\npassword = %s\n' "$ANTRING_URL" "$ANTRING_API_KEY" >"$conf"
exec kamailio -f "$cfg" -DD -E -A "ANTRING_HTTP_CONFIG=\"$conf\"" "$@"
