#!/usr/bin/env bash
# Writes FILE (deploy/compose/.env) from .env.example with a random value
# for every secret, 0600; an existing file is kept. Usage: gen-env.sh FILE
set -euo pipefail
out=${1:?usage: gen-env.sh FILE}
[[ -s $out ]] && exit 0
example="$(dirname "$0")/.env.example"
umask 077
while IFS= read -r line; do
  case $line in
    SINEW_*=change-me*) echo "${line%%=*}=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')" ;;
    *) echo "$line" ;;
  esac
done < "$example" > "$out"
echo "wrote $out"
