#!/usr/bin/env bash
# Installs Kamailio (with http_client, json and jansson, TLS and WebSocket), rtpengine (media),
# sipp, baresip (a softphone for the TLS tests), linphone-cli (Linphone set up from its QR code's
# link), openssl (their certificates), and Chromium with its driver (the web phone's tests) from
# Debian's packages.
# Safe to run again: does nothing when everything is already installed.
set -euo pipefail

packages=(kamailio kamailio-utils-modules kamailio-json-modules kamailio-extra-modules
          kamailio-tls-modules kamailio-websocket-modules rtpengine-daemon sip-tester baresip
          linphone-cli openssl chromium chromium-driver)

missing=()
for pkg in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "kamailio and sipp already installed"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    sudo_cmd=(sudo)
else
    sudo_cmd=()
fi

echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}"

kamailio -v | head -n 1
command -v sipp
