#!/usr/bin/env bash
# Make sure OpenLDAP's slapd (and ldap-utils) are installed, for the LDAP connector tests.
# Idempotent and quiet: does nothing when /usr/sbin/slapd already exists. The tests start
# their own slapd with their own configuration, so any slapd the package starts is stopped.
set -euo pipefail

if [ -x /usr/sbin/slapd ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slapd ldap-utils >/dev/null

# The package may start a system slapd; the tests run their own on a free port.
$SUDO service slapd stop >/dev/null 2>&1 || $SUDO pkill -x slapd >/dev/null 2>&1 || true

if [ ! -x /usr/sbin/slapd ]; then
    echo "ensure-slapd: /usr/sbin/slapd is still missing after installing slapd" >&2
    exit 1
fi
