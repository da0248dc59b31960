#!/bin/sh
# Print the JWT signing secret kept in FILE, creating it on first use: 48 random bytes
# (base64url), mode 0600. `make run` and `make dev` use it when neither the environment nor
# `.env` sets JWT_SECRET, so that no server ever runs with a public secret. Kept between runs:
# tokens stay valid across restarts.
#   scripts/jwt-secret.sh .sandbox/jwt-secret
set -eu
file=${1:?usage: $0 FILE}
if [ ! -s "$file" ]; then
    mkdir -p "$(dirname "$file")"
    umask 077
    python3 -c 'import secrets; print(secrets.token_urlsafe(48))' >"$file.tmp.$$"
    mv "$file.tmp.$$" "$file"
    echo "jwt-secret: generated a new JWT_SECRET in $file" >&2
fi
cat "$file"
