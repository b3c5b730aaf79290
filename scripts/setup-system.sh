#!/usr/bin/env bash
# Installs what the tests, the demo and the benchmark need from Debian's archive:
# the PostgreSQL server (15 on Debian 12, 17 on Debian 13), pgvector, and Prometheus's
# prometheus, promtool, alertmanager, amtool, plus prometheus-postgres-exporter (the
# benchmark's peer) and wrk (the custom-collector benchmark's HTTP load generator). Idempotent: a no-op where everything is present.
#
# Debian 12 has no pgvector binary package, so it is built from Debian 13's source
# package `pgvector` against postgresql-server-dev-15 (about 15 s). Debian 13 has
# postgresql-17-pgvector.
set -euo pipefail

log() { printf 'setup-system: %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "needs root to run: $*"; exit 1; fi
}

pg_major() {
  # The newest installed server major version, or the distribution's default.
  local newest
  newest=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -n 1)
  if [ -n "$newest" ] && [ -x "/usr/lib/postgresql/$newest/bin/postgres" ]; then echo "$newest"; return; fi
  case "$(. /etc/os-release; echo "${VERSION_CODENAME:-}")" in
    bookworm) echo 15 ;;
    trixie) echo 17 ;;
    *) echo 15 ;;
  esac
}

APT_UPDATED=0
apt_update_once() {
  if [ "$APT_UPDATED" -eq 0 ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
}

apt_install() {
  apt_update_once
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

have_pgvector() {
  local major=$1
  [ -f "/usr/share/postgresql/$major/extension/vector.control" ] &&
    [ -f "/usr/lib/postgresql/$major/lib/vector.so" ]
}

install_postgres() {
  local major=$1
  if [ -x "/usr/lib/postgresql/$major/bin/postgres" ] && [ -x "/usr/lib/postgresql/$major/bin/initdb" ] &&
     [ -f "/usr/share/postgresql/$major/extension/pg_stat_statements.control" ]; then
    return
  fi
  log "installing postgresql-$major"
  apt_install "postgresql-$major" "postgresql-client-$major"
}

build_pgvector_from_source() {
  local major=$1 work src_list
  log "building pgvector from Debian's source package against PostgreSQL $major"
  apt_install "postgresql-server-dev-$major" build-essential dpkg-dev
  src_list=/etc/apt/sources.list.d/pgvector-trixie-src.list
  if ! apt-cache showsrc pgvector 2>/dev/null | grep -q '^Package: pgvector'; then
    echo 'deb-src http://deb.debian.org/debian trixie main' | as_root tee "$src_list" >/dev/null
    as_root apt-get update -qq
  fi
  work=$(mktemp -d)
  (
    cd "$work"
    apt-get source -qq --download-only pgvector >/dev/null 2>&1 || apt-get source -qq pgvector >/dev/null
    dpkg-source -x --no-check ./pgvector_*.dsc src >/dev/null
    cd src
    make -s PG_CONFIG="/usr/lib/postgresql/$major/bin/pg_config" OPTFLAGS="" >/dev/null
    as_root make -s PG_CONFIG="/usr/lib/postgresql/$major/bin/pg_config" install >/dev/null
  )
  rm -rf "$work"
}

install_pgvector() {
  local major=$1
  if have_pgvector "$major"; then return; fi
  apt_update_once
  if apt-cache show "postgresql-$major-pgvector" >/dev/null 2>&1; then
    log "installing postgresql-$major-pgvector"
    apt_install "postgresql-$major-pgvector"
  else
    build_pgvector_from_source "$major"
  fi
  have_pgvector "$major" || { log "pgvector did not install for PostgreSQL $major"; exit 1; }
}

install_prometheus_tools() {
  local missing=()
  command -v prometheus >/dev/null || missing+=(prometheus)
  command -v promtool >/dev/null || missing+=(prometheus)
  command -v prometheus-alertmanager >/dev/null || command -v alertmanager >/dev/null || missing+=(prometheus-alertmanager)
  command -v amtool >/dev/null || missing+=(prometheus-alertmanager)
  [ -x /usr/bin/prometheus-postgres-exporter ] || missing+=(prometheus-postgres-exporter)
  command -v wrk >/dev/null || missing+=(wrk)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt_install $(printf '%s\n' "${missing[@]}" | sort -u)
  fi
  # Debian's packages start their services; tests start their own on free ports.
  for svc in prometheus prometheus-alertmanager prometheus-postgres-exporter prometheus-node-exporter; do
    if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
      as_root systemctl stop "$svc" || true
    fi
  done
}

main() {
  local major
  major=$(pg_major)
  install_postgres "$major"
  install_pgvector "$major"
  install_prometheus_tools
  log "ready: PostgreSQL $major with pgvector $(sed -n "s/^default_version = '\(.*\)'/\1/p" "/usr/share/postgresql/$major/extension/vector.control"), $(prometheus --version 2>&1 | head -n 1)"
}

main "$@"
